"""Clipping by value, torch.nn.utils.clip_grad_value_: every gradient element clamped into
[-clip_value, clip_value]."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from pipeline.clips.spec import Clip, Fused, Parameters, Settings
from pipeline.fields import Positive, Section
from pipeline.lazy import np, torch

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.clips.spec import Bools, Floats


class ValueClip(Section):
    clip_value: Positive


def reference(parameters: Parameters, settings: Settings) -> None:
    torch.nn.utils.clip_grad_value_(parameters, float(settings["clip_value"]))


def fused_apply(g: Floats, l2: Floats, cd: Floats, out: Floats, k: int) -> None:
    """torch.clamp(g, -clip_value, clip_value) (nan stays nan)."""
    for r in range(g.shape[0]):
        for c in range(k):
            x, bound = g[r, c], cd[0, c]
            out[r, c] = bound if x > bound else (-bound if x < -bound else x)


class Clamped:
    """clip_grad_value_ over the cells of `mask`; the others are clamped at +-inf."""

    FUSED: ClassVar[Fused | None] = Fused(fused_apply, lambda s: {"clip_value": s["clip_value"]})

    def __init__(self, mask: Bools, columns: Mapping[str, Floats], dtype: torch.dtype) -> None:
        self.bound = torch.from_numpy(np.where(mask, columns["clip_value"], np.inf)).to(dtype)

    def apply(self, g: Tensor, l2: Tensor, out: Tensor) -> None:
        if out is not g:
            out.copy_(g)
        torch.clamp(out, -self.bound, self.bound, out=out)


CLIP = Clip(
    name="value",
    section="value",
    kwargs=ValueClip,
    columns={"clip_value": math.nan},
    reference=reference,
    batched=Clamped,
)
