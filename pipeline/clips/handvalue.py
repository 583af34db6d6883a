"""Clipping by value written by hand: every gradient element clamped into
[-clip_value, clip_value], exactly torch.nn.utils.clip_grad_value_'s rule. Its threshold
is value's; the batched engine runs torch's rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.clips import value
from pipeline.clips.spec import Clip, Parameters, Settings

if TYPE_CHECKING:
    from torch import Tensor


def clip_(grads: Sequence[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    for g in grads:
        g.clamp_(-clip_value, clip_value)


def reference(parameters: Parameters, settings: Settings) -> None:
    clip_([p.grad for p in parameters if p.grad is not None], float(settings["clip_value"]))


CLIP = Clip(
    name="handvalue",
    section="value",
    kwargs=None,
    columns=value.CLIP.columns,
    reference=reference,
    batched=value.Clamped,
    by_hand=True,
)
