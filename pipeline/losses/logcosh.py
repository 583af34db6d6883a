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


NORM, LOG_2, TWO = range(3)  # fused_point's rows (training dtype)


def _coefficients(p: Array, n: int, dtype: type) -> dict[str, Array]:
    one = np.ones(len(p))
    return {"norm": (dtype(1) / dtype(n)) * one, "log2": LOG2 * one, "two": 2 * one}


def fused_point(d: float, k: Array, c: int) -> tuple[float, float]:
    """`point` for one point of cell c, op for op (exp, log1p and tanh: the C library's)."""
    norm, log2, two = k[NORM, c], k[LOG_2, c], k[TWO, c]  # loads first
    a = abs(d)
    return a + math.log1p(math.exp(-(two * a))) - log2, math.tanh(d) * norm


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
