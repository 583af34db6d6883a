"""Log-cosh loss: l(d) = log(cosh(d)), quadratic near the fit (d^2 / 2) and linear far from
it (|d| - log 2), smooth everywhere: a robust loss torch.nn does not have, so this module
gives the reference engine its own (LogCoshLoss).

Computed as |d| + log1p(exp(-2 |d|)) - log 2, which neither overflows nor cancels; its
derivative is tanh(d) and its curvature sech^2(d) = 1 - tanh^2(d) > 0, so its mean over
points with two distinct x is strictly convex: one minimiser, found by Newton's method.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pipeline.engine.fused.primitives import exp_neg, log1p_unit
from pipeline.fields import NoKwargs
from pipeline.lazy import np, torch
from pipeline.losses import pointwise
from pipeline.losses.spec import Fused, Loss

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.losses.spec import Array

LOG2 = math.log(2.0)


def terms(d: Tensor) -> Tensor:
    """log(cosh(d)) per element, as both engines compute it."""
    a = d.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - LOG2


def slope(d: Tensor) -> Tensor:
    """tanh(d) per element: the exact derivative."""
    return torch.tanh(d)


NORM = 0  # fused_point's row (training dtype)
A_MAX = 20.0  # past it exp(-2 |d|) < 5e-18: in float64, tanh |d| is 1 and the term |d| - log 2


def _coefficients(p: Array, n: int, dtype: type) -> dict[str, Array]:
    return {"norm": (dtype(1) / dtype(n)) * np.ones(len(p))}


def fused_point(d: float, k: Array, c: int) -> tuple[float, float]:
    """`point` for one point of cell c, in float64 from one exp (the engine's own, which
    vectorises: pipeline.engine.fused.primitives), each value rounded to the training
    dtype once: log cosh d = |d| + log1p(exp(-2 |d|)) - log 2, and tanh |d| = -expm1(-2 |d|)
    / (2 + expm1(-2 |d|)), which does not cancel near 0. (torch's tanh, exp and log1p give
    other bits: the fused engine agrees with the exact one within tolerance.)"""
    norm = k[NORM, c]  # loads first
    a = abs(d + 0.0)  # float64 (numba: a float32 plus a float64 literal)
    e, em = exp_neg(-2.0 * min(a, A_MAX))
    t = -em / (2.0 + em)
    t = t if a == a else a  # NaN stays NaN; +-inf gives +-1, as tanh does
    like = type(d)  # the training dtype
    return like(a + log1p_unit(e) - LOG2), like(math.copysign(t, d)) * norm


def value(d: Array) -> Array:
    a = np.abs(d)
    return a + np.log1p(np.exp(-2 * a)) - LOG2


def curvature(d: Array) -> Array:
    return 1.0 / np.cosh(d) ** 2  # sech^2; 0 only where cosh overflows (|d| > 710)


def newton(x: Array, y: Array) -> tuple[Array, Array]:
    """The minimiser of the mean log-cosh of each row of x, y (pointwise.newton)."""
    return pointwise.newton(x, y, value, np.tanh, curvature, "log-cosh")


LOSS = Loss(
    name="logcosh",
    torch="LogCoshLoss",
    kwargs=NoKwargs,
    param=None,
    value=lambda d, _: value(d),
    derivative=lambda d, _: np.tanh(d),
    curvature=lambda d, _: curvature(d),
    solve=lambda x, y, _: newton(x, y),
    unique=pointwise.one_minimiser,
    batched=pointwise.rule(terms, slope),
    module=pointwise.builder("LogCoshLoss", terms, slope),
    fused=Fused(fused_point, _coefficients),
)
