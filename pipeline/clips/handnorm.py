"""Clipping by norm written by hand, as the tutorial does it: the p-norm of all gradients
taken together, then each gradient scaled by min(1, max_norm / (norm + 1e-6)), exactly
torch.nn.utils.clip_grad_norm_'s rule (tests hold the two side by side). Its thresholds
are norm's; the batched engine runs torch's rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.clips import norm
from pipeline.clips.spec import Clip, Parameters, Settings
from pipeline.fields import norm_type_of
from pipeline.lazy import torch

if TYPE_CHECKING:
    from torch import Tensor


def total_norm(grads: Sequence[Tensor], norm_type: float) -> Tensor:
    """The p-norm of all gradients flattened together, computed by hand."""
    if math.isinf(norm_type):
        return torch.stack([g.abs().max() for g in grads]).max()
    powered = torch.stack([(g.abs() ** norm_type).sum() for g in grads]).sum()
    return powered ** (1.0 / norm_type)


def clip_(grads: Sequence[Tensor], max_norm: float, norm_type: float) -> Tensor:
    """Scale `grads` in place so their total norm is at most max_norm; return the norm before."""
    total = total_norm(grads, norm_type)
    coef = torch.clamp(max_norm / (total + norm.EPS), max=1.0)
    for g in grads:
        g.mul_(coef)
    return total


def reference(parameters: Parameters, settings: Settings) -> None:
    grads = [p.grad for p in parameters if p.grad is not None]
    clip_(grads, float(settings["max_norm"]), norm_type_of(settings["norm_type"]))


CLIP = Clip(
    name="handnorm",
    section="norm",
    kwargs=None,
    columns=norm.CLIP.columns,
    reference=reference,
    batched=norm.Scaled,
    by_hand=True,
)
