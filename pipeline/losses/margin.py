"""Multi-class hinge loss (torch.nn.MultiMarginLoss, p = 1, margin 1) for nn.Linear(2, 2)
on two classes: a contrast to cross-entropy that stops pushing once a point is right by
the margin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.losses.spec import ClassLoss

if TYPE_CHECKING:
    from torch import Tensor


def point(u: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """Per point, the loss's term for two classes: max(0, 1 - u) summed over the other
    class, divided by the number of classes; its derivative in u: -1/2 where 1 - u > 0,
    else 0 (torch's, at the kink too). q (label smoothing) is not used."""
    h = 1 - u
    return h.clamp(min=0) / 2, (h > 0).to(u.dtype) / -2


LOSS = ClassLoss(name="margin", torch="MultiMarginLoss", point=point, smoothing=False)
