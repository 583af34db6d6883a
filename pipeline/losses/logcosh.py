"""Log-cosh loss: l(d) = log(cosh(d)), quadratic near the fit (d^2 / 2) and linear far from
it (|d| - log 2), smooth everywhere: a robust loss torch.nn does not have, so this module
gives the reference engine its own (LogCoshLoss).

Computed as |d| + log1p(exp(-2 |d|)) - log 2, which neither overflows nor cancels; its
derivative is tanh(d) and its curvature sech^2(d) = 1 - tanh^2(d) > 0, so its mean over
points with two distinct x is strictly convex: one minimiser, found by Newton's method.
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING

from pipeline.fields import NoKwargs
from pipeline.lazy import np, torch
from pipeline.losses.mse import least_squares
from pipeline.losses.spec import Fused, Kwargs, Loss, Pointwise

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.losses.spec import Array, Mask

LOG2 = math.log(2.0)
NEWTON_STEPS = 100  # quadratic convergence: a handful suffice; more means a bug


def terms(d: Tensor) -> Tensor:
    """log(cosh(d)) per element, as both engines compute it."""
    a = d.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - LOG2


@cache
def module_class() -> type[torch.nn.Module]:
    """LogCoshLoss, built on first use (torch is imported lazily here)."""

    class Terms(torch.autograd.Function):
        """The terms, and their exact derivative tanh(d) as backward (autograd through the
        stable form would round otherwise: tests/losses/test_logcosh.py checks the two)."""

        @staticmethod
        def forward(ctx: object, d: Tensor) -> Tensor:  # type: ignore[override]
            ctx.save_for_backward(d)  # type: ignore[attr-defined]
            return terms(d)

        @staticmethod
        def backward(ctx: object, grad: Tensor) -> Tensor:  # type: ignore[override]
            (d,) = ctx.saved_tensors  # type: ignore[attr-defined]
            return grad * torch.tanh(d)

    class LogCoshLoss(torch.nn.Module):
        """The mean (or sum, or none) of log(cosh(input - target))."""

        def __init__(self, reduction: str = "mean") -> None:
            super().__init__()
            self.reduction = reduction

        def forward(self, input: Tensor, target: Tensor) -> Tensor:
            found = Terms.apply(input - target)
            if self.reduction == "mean":
                return found.mean()
            return found.sum() if self.reduction == "sum" else found

    return LogCoshLoss


def point(d: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The batched engine's terms and dL/dy_hat = tanh(d) / n, rounded as the reference's
    autograd rounds them (mean's backward is (1 / n) in the dtype, times tanh)."""
    slope = torch.tanh(d).mul_(torch.ones((), dtype=d.dtype) / n)
    return terms(d), slope


NORM, LOG_2, TWO = range(3)  # fused_point's rows (training dtype)


def _coefficients(p: Array, n: int, dtype: type) -> dict[str, Array]:
    one = np.ones(len(p))
    return {"norm": (dtype(1) / dtype(n)) * one, "log2": LOG2 * one, "two": 2 * one}


def fused_point(d: float, k: Array, c: int) -> tuple[float, float]:
    """`point` for one point of cell c, op for op (exp, log1p and tanh: the C library's)."""
    norm, log2, two = k[NORM, c], k[LOG_2, c], k[TWO, c]  # loads first
    a = abs(d)
    return a + math.log1p(math.exp(-(two * a))) - log2, math.tanh(d) * norm


def newton(x: Array, y: Array) -> tuple[Array, Array]:
    """The minimiser of the mean log-cosh of each row of x, y: Newton's method with step
    halving, from least squares, centred on mean x (well conditioned)."""
    w, b = least_squares(x, y)
    xm = x.mean(axis=1)
    xc = x - xm[:, None]
    c = b + w * xm  # intercept at mean x
    todo = np.arange(x.shape[0])
    for _ in range(NEWTON_STEPS):
        if not todo.size:
            return w, c - w * xm
        d = w[todo, None] * xc[todo] + c[todo, None] - y[todo]
        g, h = np.tanh(d), 1.0 / np.cosh(d) ** 2
        gw, gc = (g * xc[todo]).mean(axis=1), g.mean(axis=1)
        hww, hwc, hcc = (
            (h * xc[todo] ** 2).mean(axis=1),
            (h * xc[todo]).mean(axis=1),
            h.mean(axis=1),
        )
        det = hww * hcc - hwc**2
        dw, dc = (hcc * gw - hwc * gc) / det, (hww * gc - hwc * gw) / det
        now = _value(d)
        t = np.ones_like(dw)
        for _ in range(50):  # halve until the loss does not rise (it always falls, but rounding)
            lower = _value(d - t[:, None] * (dw[:, None] * xc[todo] + dc[:, None])) <= now
            if lower.all():
                break
            t = np.where(lower, t, t / 2)
        w[todo] -= t * dw
        c[todo] -= t * dc
        scale = 1 + np.abs(y[todo]).max(axis=1)
        todo = todo[
            np.maximum(np.abs(t * dw) * (1 + np.abs(xc[todo]).max(axis=1)), np.abs(t * dc))
            > 1e-15 * scale
        ]
    raise ArithmeticError(
        f"log-cosh minimiser: {todo.size} datasets unsolved in {NEWTON_STEPS} steps"
    )


def _value(d: Array) -> Array:
    a = np.abs(d)
    return (a + np.log1p(np.exp(-2 * a)) - LOG2).mean(axis=1)


def _unique(x: Array, y: Array, w: Array, b: Array, kwargs: Kwargs) -> Mask:
    return np.ones(w.shape, dtype=bool)  # strictly convex on two distinct x: one minimiser


def _curvature(d: Array, kwargs: Kwargs) -> Array:
    return 1.0 / np.cosh(d) ** 2  # sech^2; 0 only where cosh overflows (|d| > 710)


LOSS = Loss(
    name="logcosh",
    torch="LogCoshLoss",
    kwargs=NoKwargs,
    param=None,
    value=lambda d, _: np.abs(d) + np.log1p(np.exp(-2 * np.abs(d))) - LOG2,
    derivative=lambda d, _: np.tanh(d),
    curvature=_curvature,
    solve=lambda x, y, _: newton(x, y),
    unique=_unique,
    batched=Pointwise(point),
    module=lambda **kwargs: module_class()(**kwargs),
    fused=Fused(fused_point, _coefficients),
)
