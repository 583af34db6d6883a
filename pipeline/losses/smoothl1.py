"""Smooth L1 loss: l(d) = d^2 / (2 beta) while |d| < beta, else |d| - beta / 2
(torch.nn.SmoothL1Loss): Huber's loss with delta = beta, divided by beta, so it shares
Huber's minimiser."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.fields import Positive, Section
from pipeline.lazy import np
from pipeline.losses.huber import newton, unique_within
from pipeline.losses.spec import C0, K1, K2, KL, C, Fused, H, Kwargs, Loss, Piecewise

if TYPE_CHECKING:
    from pipeline.losses.spec import Array


class SmoothL1Kwargs(Section):
    beta: Positive  # quadratic below |error| < beta


def _value(d: Array, kwargs: Kwargs) -> Array:
    beta = kwargs["beta"]
    return np.where(np.abs(d) < beta, 0.5 * d**2 / beta, np.abs(d) - 0.5 * beta)


def _coefficients(p: Array, n: int, dtype: type) -> dict[str, Array]:
    one, norm = np.ones(len(p)), np.float64(1.0 / n)
    return {  # torch: 0.5 d d / beta while |d| < beta, else |d| - 0.5 beta
        "c": p, "h": 0.5 * one, "k2": p, "c0": 0.5 * p, "m": one,
        "k1": norm * one, "kl": norm * one,
    }  # fmt: skip


def fused_point(d: float, k: Array, c: int) -> tuple[float, float]:
    """Its Piecewise rule with m = 1: (h |d|) |d| / beta and d k1 / beta while |d| < beta,
    else |d| - c0 and sign(d) kl."""
    a, beta, h, k2, c0, k1, kl = abs(d), k[C, c], k[H, c], k[K2, c], k[C0, c], k[K1, c], k[KL, c]
    quad = a < beta  # loads first, then both sides and a choice: the loop vectorises
    term = ((a * h) * a) / k2 if quad else a - c0
    return term, (d * k1) / k2 if quad else np.sign(d) * kl


LOSS = Loss(
    name="smoothl1",
    torch="SmoothL1Loss",
    kwargs=SmoothL1Kwargs,
    param="beta",
    value=_value,
    derivative=lambda d, k: np.where(np.abs(d) < k["beta"], d / k["beta"], np.sign(d)),
    curvature=lambda d, k: (np.abs(d) < k["beta"]) / k["beta"],
    solve=lambda x, y, k: newton(x, y, k["beta"]),
    unique=lambda x, y, w, b, k: unique_within(x, y, w, b, k["beta"]),
    batched=Piecewise(_coefficients),
    kinks=lambda k: (-k["beta"], k["beta"]),
    fused=Fused(fused_point, _coefficients),
)
