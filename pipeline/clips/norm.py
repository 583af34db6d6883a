"""Clipping by norm, torch.nn.utils.clip_grad_norm_: the gradients are scaled together by
min(1, max_norm / (norm + 1e-6)), the norm being the p-norm of all gradients taken
together (norm_type p >= 1, or inf: the largest |g|)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from pipeline.clips.spec import Clip, Fused, Parameters, Settings
from pipeline.fields import NormType, Positive, Section, norm_type_of
from pipeline.lazy import np, torch

if TYPE_CHECKING:
    import numpy.typing as npt
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


MAX_NORM, NORM_TYPE, INVERSE, EPS_ROW, ONE = range(5)  # fused_apply's rows


def fused_columns(s: Mapping[str, Floats]) -> dict[str, Floats]:
    one = np.ones_like(s["max_norm"])
    return {
        "max_norm": s["max_norm"],
        "norm_type": s["norm_type"],
        "inverse": 1 / s["norm_type"],
        "eps": EPS * one,
        "one": one,
    }


def fused_kind(s: Mapping[str, Floats]) -> npt.NDArray[np.int64]:
    """0: the L2 norm (given), 1: inf, the largest |g|, 2: any other p."""
    p = s["norm_type"]
    return np.where(p == 2, 0, np.where(np.isinf(p), 1, 2))


def fused_apply(g: Floats, l2: Floats, cd: Floats, out: Floats, k: int) -> None:
    """Scaled.apply for one kind of norm: 1 / (norm + eps), times max_norm, at most 1."""
    rows, p = g.shape[0], cd[NORM_TYPE, 0]  # one kind per call: a loop each, vectorised
    if p == 2:
        for c in range(k):
            coef = min(cd[ONE, c] / (l2[c] + cd[EPS_ROW, c]) * cd[MAX_NORM, c], cd[ONE, c])
            for r in range(rows):
                out[r, c] = g[r, c] * coef
    elif math.isinf(p):
        for c in range(k):
            norm = abs(g[0, c])
            for r in range(1, rows):
                norm = max(norm, abs(g[r, c]))
            coef = min(cd[ONE, c] / (norm + cd[EPS_ROW, c]) * cd[MAX_NORM, c], cd[ONE, c])
            for r in range(rows):
                out[r, c] = g[r, c] * coef
    else:  # torch.linalg.vector_norm of each one-element gradient, then of those
        for c in range(k):
            q, norm = cd[NORM_TYPE, c], cd[ONE, c] - cd[ONE, c]
            for r in range(rows):
                norm += ((abs(g[r, c]) ** q) ** cd[INVERSE, c]) ** q
            norm = norm ** cd[INVERSE, c]
            coef = min(cd[ONE, c] / (norm + cd[EPS_ROW, c]) * cd[MAX_NORM, c], cd[ONE, c])
            for r in range(rows):
                out[r, c] = g[r, c] * coef


class Scaled:
    """clip_grad_norm_ over the cells of `mask`, each at its max_norm and norm_type, as
    torch computes it: coef = max_norm * 1 / (norm + 1e-6), clamped at 1, times g."""

    FUSED: ClassVar[Fused | None] = Fused(fused_apply, fused_columns, fused_kind)

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
