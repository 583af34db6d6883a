"""Cosh loss: l(d) = cosh(d) - 1, quadratic near the fit (d^2 / 2) and exponential far from
it; torch.nn lacks it, so this module gives the reference engine its own (CoshLoss).

(L0, L1)-smooth with L0 = L1 = 1, not L-smooth: its curvature l''(d) = cosh(d) grows
exponentially, but cosh(d) <= 1 + |sinh(d)| = L0 + L1 |l'(d)| (the gap cosh(d) - |sinh(d)|
is exp(-|d|) <= 1). The mean over points inherits the bound, with constants that depend on
the data (where the points' slopes cancel, near the minimiser, L0 takes their curvature).
Gradient descent at a fixed lr therefore diverges from far enough away, while clipped or
normalised steps do not (Zhang, He, Sra and Jadbabaie, ICLR 2020).

Computed as 2 sinh(d / 2)^2, which does not cancel near 0 (cosh(d) - 1 loses every digit
below |d| ~ 1e-8) and overflows where cosh(d) does; its derivative is sinh(d) and its
curvature cosh(d) >= 1, so its mean over points with two distinct x is strictly convex:
one minimiser, found by Newton's method (from least squares; near that line's errors,
within +-710, or cosh overflows float64 and the solver says so). cosh passes float64's
largest value at |d| ~ 710.5 and float32's at ~89.4: the loss and its gradient become
inf and a cell stops there, as diverged.

Both engines take sinh(d / 2) and cosh(d / 2) from expm1(+-d / 2), not torch.sinh: torch's
sinh and cosh round differently in their vectorised and scalar loops (3-5% of values in
[-30, 30] here, float32 and float64), so a value's bits would depend on its place in a
tensor (the reference's 3 points against the batched engine's (points, cells)); expm1's
loops agree. expm1 is torch's own in the exact engine, the C library's in the fused one:
the two agree within tolerance, not bit for bit.
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


STEPS = 1000  # on an exponential Newton moves a large error by only a few units a step:
# an outlier 600 away from the line takes it 237 (tests/losses/test_cosh.py)


def halves(d: Tensor) -> tuple[Tensor, Tensor]:
    """sinh(d / 2) and cosh(d / 2) per element, as both engines compute them: from
    p = expm1(d / 2) and q = expm1(-d / 2), (p - q) / 2 and (p + q) / 2 + 1."""
    h = d * 0.5
    p, q = torch.expm1(h), torch.expm1(-h)
    return (p - q) * 0.5, (p + q) * 0.5 + 1


def terms(d: Tensor) -> Tensor:
    """cosh(d) - 1 per element: 2 sinh(d / 2)^2, as 2 (s s)."""
    s, _ = halves(d)
    return 2 * (s * s)


def slope(d: Tensor) -> Tensor:
    """sinh(d) per element, the exact derivative: 2 sinh(d / 2) cosh(d / 2), as 2 (s c)."""
    s, c = halves(d)
    return 2 * (s * c)


NORM, HALF, TWO, ONE = range(4)  # fused_point's rows (training dtype)


def _coefficients(p: Array, n: int, dtype: type) -> dict[str, Array]:
    one = np.ones(len(p))
    return {"norm": (dtype(1) / dtype(n)) * one, "half": 0.5 * one, "two": 2 * one, "one": one}


def fused_point(d: float, k: Array, c: int) -> tuple[float, float]:
    """`point` for one point of cell c, op for op (expm1: the C library's)."""
    norm, half, two, one = k[NORM, c], k[HALF, c], k[TWO, c], k[ONE, c]  # loads first
    h = d * half
    p, q = math.expm1(h), math.expm1(-h)
    s, ch = (p - q) * half, (p + q) * half + one
    return two * (s * s), (two * (s * ch)) * norm


def value(d: Array) -> Array:
    return 2.0 * np.square(np.sinh(d / 2))


def curvature(d: Array) -> Array:
    return np.cosh(d)


def newton(x: Array, y: Array) -> tuple[Array, Array]:
    """The minimiser of the mean cosh loss of each row of x, y (pointwise.newton)."""
    return pointwise.newton(x, y, value, np.sinh, curvature, "cosh", steps=STEPS)


LOSS = Loss(
    name="cosh",
    torch="CoshLoss",
    kwargs=NoKwargs,
    param=None,
    value=lambda d, _: value(d),
    derivative=lambda d, _: np.sinh(d),
    curvature=lambda d, _: curvature(d),
    solve=lambda x, y, _: newton(x, y),
    unique=pointwise.one_minimiser,
    batched=pointwise.rule(terms, slope),
    module=pointwise.builder("CoshLoss", terms, slope),
    fused=Fused(fused_point, _coefficients),
)
