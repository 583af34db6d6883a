"""Multi-class hinge loss (torch.nn.MultiMarginLoss, p = 1, margin 1) for nn.Linear(2, 2)
on two classes: a contrast to cross-entropy that stops pushing once a point is right by
the margin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.lazy import np
from pipeline.losses.spec import ClassLoss, Fused

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.losses.spec import Array


def point(u: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """Per point, the loss's term for two classes: max(0, 1 - u) summed over the other
    class, divided by the number of classes; its derivative in u: -1/2 where 1 - u > 0,
    else 0 (torch's, at the kink too). q (label smoothing) is not used."""
    h = 1 - u
    return h.clamp(min=0) / 2, (h > 0).to(u.dtype) / -2


ONE, HALF, ZERO, MINUS_HALF = range(4)  # fused_point's rows, in the training dtype


def _coefficients(smoothing: Array, n: int, dtype: type) -> dict[str, Array]:
    one: Array = np.ones(len(smoothing), dtype=dtype)
    return {"one": one, "half": one / 2, "zero": one * 0, "minus_half": one / -2}


def fused_point(u: float, k: Array, c: int) -> tuple[float, float]:
    """`point` for one point of cell c: max(0, 1 - u) / 2 (nan stays nan, as in clamp)
    and -1/2 where 1 - u > 0, else -0."""
    one, half, zero, minus_half = k[ONE, c], k[HALF, c], k[ZERO, c], k[MINUS_HALF, c]
    h = one - u
    return zero if h <= zero else h * half, (one if h > zero else zero) * minus_half


LOSS = ClassLoss(
    name="margin",
    torch="MultiMarginLoss",
    point=point,
    smoothing=False,
    fused=Fused(fused_point, _coefficients),
)
