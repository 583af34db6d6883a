"""Clipping by norm, torch.nn.utils.clip_grad_norm_: the gradients are scaled together by
min(1, max_norm / (norm + 1e-6)), the norm being the p-norm of all gradients taken
together (norm_type p >= 1, or inf: the largest |g|)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipeline.clips.spec import Clip, Parameters, Settings
from pipeline.fields import NormType, Positive, Section, norm_type_of
from pipeline.lazy import np, torch

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.clips.spec import Bools, Floats

EPS = 1e-6  # torch adds it to the norm so that a zero norm does not divide


class NormClip(Section):
    max_norm: Positive  # 0 would freeze training, negative would reverse gradients
    norm_type: NormType


def reference(parameters: Parameters, settings: Settings) -> None:
    torch.nn.utils.clip_grad_norm_(
        parameters, float(settings["max_norm"]), norm_type_of(settings["norm_type"])
    )


class Scaled:
    """clip_grad_norm_ over the cells of `mask`, each at its max_norm and norm_type, as
    torch computes it: coef = max_norm * 1 / (norm + 1e-6), clamped at 1, times g."""

    def __init__(self, mask: Bools, columns: Mapping[str, Floats], dtype: torch.dtype) -> None:
        p = columns["norm_type"]
        self.unscaled = torch.from_numpy(~mask)
        self.max_norm = torch.from_numpy(np.where(mask, columns["max_norm"], 1.0)).to(dtype)
        inf = mask & np.isinf(p)
        self.inf = torch.from_numpy(inf) if inf.any() else None
        others = np.unique(p[mask & (p != 2) & ~inf])  # a few norm types, not one per cell
        self.others = [
            (float(q), torch.from_numpy(np.flatnonzero(mask & (p == q)))) for q in others
        ]

    def norm(self, g: Tensor, l2: Tensor) -> Tensor:
        """Each cell's norm of its own type, given the L2 norms `l2`."""
        norm = l2 if self.inf is None else torch.where(self.inf, g.abs().amax(0), l2)
        for q, cells in self.others:
            pairs = g[:, cells].T.contiguous()
            each = torch.linalg.vector_norm(pairs[:, :, None], q, dim=2)  # per parameter
            norm = norm.index_copy(0, cells, torch.linalg.vector_norm(each, q, dim=1))
        return norm

    def apply(self, g: Tensor, l2: Tensor, out: Tensor) -> None:
        coef = self.norm(g, l2).add(EPS).reciprocal_().mul_(self.max_norm)  # torch's order
        torch.mul(g, coef.clamp_(max=1.0).masked_fill_(self.unscaled, 1.0), out=out)


CLIP = Clip(
    name="norm",
    section="norm",
    kwargs=NormClip,
    columns={"max_norm": math.nan, "norm_type": 2.0},
    reference=reference,
    batched=Scaled,
)
