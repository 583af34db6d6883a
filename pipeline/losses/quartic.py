"""Quartic loss: l(d) = d^4, so the loss is mean(r^4) over the residuals r; torch.nn lacks
it, so this module gives the reference engine its own (QuarticLoss).

(L0, L1)-smooth, not L-smooth: its curvature l''(d) = 12 d^2 grows without bound, but no
faster than its slope |l'(d)| = 4 |d|^3. For every L1 > 0, 12 d^2 <= 16 / L1^2 + L1 4 |d|^3
(the gap 12 d^2 - 4 L1 |d|^3 peaks at |d| = 2 / L1, at 16 / L1^2), so L0 = 16 / L1^2: for
example L0 = 1 with L1 = 4, or L0 = 16 with L1 = 1. The mean over points inherits the
bound, with constants that depend on the data (where the points' slopes cancel, near the
minimiser, L0 takes their curvature). Gradient descent at a fixed lr therefore diverges
from far enough away, while clipped or normalised steps do not (Zhang, He, Sra and
Jadbabaie, ICLR 2020).

Computed as s s with s = d d, its derivative as (d s) 4 and its curvature as 12 s: IEEE
products only, so the fused engine's cells are the exact engine's bit for bit, as MSE's.
The term is strictly convex, so the mean over points with two distinct x has one
minimiser, found by Newton's method. Its Hessian vanishes where every error does (an
exact fit, such as the tutorial's y = 2x): gradient descent converges there sublinearly
and no stability edge applies (the edge is infinite, as for L1). d^4 passes float32's
largest value at |d| ~ 4.3e9 (float64's at ~1.2e77); a cell stops there, as diverged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.fields import NoKwargs
from pipeline.lazy import np
from pipeline.losses import pointwise
from pipeline.losses.spec import Fused, Loss

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.losses.spec import Array


def terms(d: Tensor) -> Tensor:
    """d^4 per element, as both engines compute it: (d d) (d d)."""
    s = d * d
    return s * s


def slope(d: Tensor) -> Tensor:
    """4 d^3 per element, as both engines compute it: (d (d d)) 4, the exact derivative."""
    return (d * (d * d)) * 4


NORM, FOUR = range(2)  # fused_point's rows (training dtype)


def _coefficients(p: Array, n: int, dtype: type) -> dict[str, Array]:
    one = np.ones(len(p))
    return {"norm": (dtype(1) / dtype(n)) * one, "four": 4 * one}


def fused_point(d: float, k: Array, c: int) -> tuple[float, float]:
    """`point` for one point of cell c, op for op (products only: IEEE's in both)."""
    norm, four = k[NORM, c], k[FOUR, c]  # loads first
    s = d * d
    return s * s, ((d * s) * four) * norm


def value(d: Array) -> Array:
    return np.square(np.square(d))


def derivative(d: Array) -> Array:
    return 4.0 * d**3


def curvature(d: Array) -> Array:
    return 12.0 * np.square(d)  # 0 only at d = 0: an exact fit has no curvature


def newton(x: Array, y: Array) -> tuple[Array, Array]:
    """The minimiser of the mean quartic loss of each row of x, y (pointwise.newton)."""
    return pointwise.newton(x, y, value, derivative, curvature, "quartic")


LOSS = Loss(
    name="quartic",
    torch="QuarticLoss",
    kwargs=NoKwargs,
    param=None,
    value=lambda d, _: value(d),
    derivative=lambda d, _: derivative(d),
    curvature=lambda d, _: curvature(d),
    solve=lambda x, y, _: newton(x, y),
    unique=pointwise.one_minimiser,
    batched=pointwise.rule(terms, slope),
    module=pointwise.builder("QuarticLoss", terms, slope),
    fused=Fused(fused_point, _coefficients),
)
