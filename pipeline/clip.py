"""Gradient clipping: torch's utilities and the same two rules written by hand.

The hand-written rules follow torch.nn.utils exactly: the total norm is the p-norm of all
gradients taken together, and gradients are scaled by min(1, max_norm / (norm + 1e-6)).
"""

import math
from collections.abc import Callable, Mapping, Sequence

import torch

from pipeline.params import ClipName

EPS = 1e-6  # torch's clip_grad_norm_ adds it to the norm so a zero norm does not divide


def norm_type_of(value: float | str) -> float:
    return math.inf if value == "inf" else float(value)


def total_norm(grads: Sequence[torch.Tensor], norm_type: float) -> torch.Tensor:
    """The p-norm of all gradients flattened together, computed by hand."""
    if math.isinf(norm_type):
        return torch.stack([g.abs().max() for g in grads]).max()
    powered = torch.stack([(g.abs() ** norm_type).sum() for g in grads]).sum()
    return powered ** (1.0 / norm_type)


def clip_norm_(grads: Sequence[torch.Tensor], max_norm: float, norm_type: float) -> torch.Tensor:
    """Scale `grads` in place so their total norm is at most max_norm; return the norm before."""
    norm = total_norm(grads, norm_type)
    coef = torch.clamp(max_norm / (norm + EPS), max=1.0)
    for g in grads:
        g.mul_(coef)
    return norm


def clip_value_(grads: Sequence[torch.Tensor], clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    for g in grads:
        g.clamp_(-clip_value, clip_value)


Parameters = list[torch.nn.Parameter]
Settings = Mapping[str, float | str]  # max_norm and norm_type, or clip_value


def _grads(parameters: Parameters) -> list[torch.Tensor]:
    return [p.grad for p in parameters if p.grad is not None]


def _none(parameters: Parameters, settings: Settings) -> None:
    pass


def _norm(parameters: Parameters, settings: Settings) -> None:
    norm_type = norm_type_of(settings["norm_type"])
    torch.nn.utils.clip_grad_norm_(parameters, float(settings["max_norm"]), norm_type)


def _value(parameters: Parameters, settings: Settings) -> None:
    torch.nn.utils.clip_grad_value_(parameters, float(settings["clip_value"]))


def _handnorm(parameters: Parameters, settings: Settings) -> None:
    norm_type = norm_type_of(settings["norm_type"])
    clip_norm_(_grads(parameters), float(settings["max_norm"]), norm_type)


def _handvalue(parameters: Parameters, settings: Settings) -> None:
    clip_value_(_grads(parameters), float(settings["clip_value"]))


CLIPS: dict[ClipName, Callable[[Parameters, Settings], None]] = {
    "none": _none,
    "norm": _norm,
    "value": _value,
    "handnorm": _handnorm,
    "handvalue": _handvalue,
}
