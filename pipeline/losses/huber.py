"""Huber loss: l(d) = d^2 / 2 while |d| < delta, else delta (|d| - delta / 2)
(torch.nn.HuberLoss): quadratic near the fit, linear (robust) beyond.

Its minimiser (shared with smooth L1, which is Huber divided by beta): Newton steps with
backtracking on the piecewise quadratic, each step the exact solution of the quadratic
piece given the active set (points with |d| < delta are quadratic, the rest linear with
their sign). It stops when that solution lands in its own active set: then the gradient
vanishes up to rounding. The minimisers form a set when the quadratic zone holds fewer
than two distinct x (e.g. every point in the linear zone: the loss is then flat nearby,
like L1): `unique` then says False.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.fields import Positive, Section
from pipeline.lazy import np
from pipeline.losses.l1 import EPS, least_absolute
from pipeline.losses.mse import least_squares
from pipeline.losses.spec import (
    C0,
    K1,
    KL,
    C,
    Fused,
    H,
    Kwargs,
    Loss,
    M,
    Piecewise,
    dtype_round,
    residuals,
    spread,
)

if TYPE_CHECKING:
    from pipeline.losses.spec import Array, Mask

NEWTON_STEPS = 200  # the active set settles in a handful; more means a bug


class HuberKwargs(Section):
    delta: Positive  # quadratic below |error| < delta


def _value(x: Array, y: Array, w: Array, b: Array, delta: float) -> Array:
    a = np.abs(residuals(x, y, w, b))
    return np.where(a < delta, 0.5 * a * a, delta * (a - 0.5 * delta)).sum(axis=1)


def _piece(x: Array, y: Array, quad: Mask, sign: Array, delta: float) -> tuple[Array, Array]:
    """The minimiser of the quadratic piece with this active set, sum_Q d^2 / 2 +
    delta sum_L sign d, centred on the quadratic points (nan where singular)."""
    m = quad.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xq = np.where(quad, x, 0.0).sum(axis=1) / m
        yq = np.where(quad, y, 0.0).sum(axis=1) / m
        xc = x - xq[:, None]
        sxx = np.where(quad, xc * xc, 0.0).sum(axis=1)
        sxy = np.where(quad, xc * (y - yq[:, None]), 0.0).sum(axis=1)
        w = (sxy - delta * (sign * xc).sum(axis=1)) / sxx
        b = yq - delta * sign.sum(axis=1) / m - w * xq
    return w, b


def _damped(x: Array, quad: Mask, slope: Array, w: Array, b: Array) -> tuple[Array, Array]:
    """(w, b) after a Newton step on the quadratic zone's curvature plus 1e-6 times every
    point's: where the zone alone has too few points to invert (centred on mean x)."""
    xm = x.mean(axis=1)
    xc, c = x - xm[:, None], quad + 1e-6
    gw, gc = (slope * xc).sum(axis=1), slope.sum(axis=1)
    hww, hwc, hcc = (c * xc * xc).sum(axis=1), (c * xc).sum(axis=1), c.sum(axis=1)
    det = hww * hcc - hwc**2
    dw, dc = (hwc * gc - hcc * gw) / det, (hwc * gw - hww * gc) / det
    return w + dw, b + dc - dw * xm


def _backtrack(x: Array, y: Array, w: Array, b: Array, dw: Array, db: Array, delta: float) -> Array:
    """The largest t = 2^-k (k < 60) along (dw, db) that lowers the loss, else 0."""
    now = _value(x, y, w, b, delta)
    step, t = np.zeros_like(w), np.ones_like(w)
    for _ in range(60):
        left = np.flatnonzero(step == 0)
        if not left.size:
            break
        tl = t[left]
        new = _value(x[left], y[left], w[left] + tl * dw[left], b[left] + tl * db[left], delta)
        lower = new < now[left]
        step[left[lower]] = tl[lower]
        t[left] *= 0.5
    return step


def newton(x: Array, y: Array, delta: float) -> tuple[Array, Array]:
    """A minimiser of the mean Huber loss (kink delta) of each row of x, y."""
    w, b = least_squares(x, y)
    far = ~(spread(x, np.abs(residuals(x, y, w, b)) < delta) > 0)
    if far.any():  # small delta: start on L1's line, through two points of the zone
        w[far], b[far] = least_absolute(x[far], y[far])
    # on the summed gradient: 1e-14 of its size, or what rounding d = y_hat - y allows
    resolution = 1e-14 * delta + 4 * EPS * np.abs(y).max(axis=1)
    gtol = x.shape[1] * (1 + np.abs(x).max(axis=1)) * resolution
    todo = np.arange(x.shape[0])
    for _ in range(NEWTON_STEPS):
        if not todo.size:
            return w, b
        xt, yt, wt, bt = x[todo], y[todo], w[todo], b[todo]
        d = residuals(xt, yt, wt, bt)
        quad = np.abs(d) < delta
        sign = np.where(quad, 0.0, np.sign(d))
        slope = np.where(quad, d, delta * sign)  # h'(d)
        wn, bn = _piece(xt, yt, quad, sign, delta)
        singular = ~(spread(xt, quad) > 0)
        if singular.any():  # fewer than two distinct x in the zone: nothing to invert
            wn[singular], bn[singular] = _damped(
                xt[singular], quad[singular], slope[singular], wt[singular], bt[singular]
            )
        dn = residuals(xt, yt, wn, bn)  # landed: the piece's minimiser is in its own piece
        landed = ~singular & ((np.abs(dn) < delta) == quad).all(axis=1)
        landed &= (np.where(quad, 0.0, np.sign(dn)) == sign).all(axis=1)
        grad = np.maximum(np.abs((slope * xt).sum(axis=1)), np.abs(slope.sum(axis=1)))
        flat = ~landed & (grad <= gtol[todo])
        w[todo[landed]], b[todo[landed]] = wn[landed], bn[landed]
        move = np.flatnonzero(~landed & ~flat)
        step = _backtrack(
            xt[move], yt[move], wt[move], bt[move], wn[move] - wt[move], bn[move] - bt[move], delta
        )
        w[todo[move]] += step * (wn[move] - wt[move])
        b[todo[move]] += step * (bn[move] - bt[move])
        if (grad[move[step == 0]] > 1e4 * gtol[todo[move[step == 0]]]).any():
            raise ArithmeticError(
                "Huber minimiser: stuck above rounding's floor; delta too small for y?"
            )
        todo = todo[move[step > 0]]  # the rest: no lower point, at rounding's floor
    raise ArithmeticError(f"Huber minimiser: {todo.size} datasets unsolved in {NEWTON_STEPS} steps")


def unique_within(x: Array, y: Array, w: Array, b: Array, kink: float) -> Mask:
    """Whether the minimiser is the only one: two distinct x in the quadratic zone."""
    return spread(x, np.abs(residuals(x, y, w, b)) < kink) > 0


def _coefficients(p: Array, n: int, dtype: type) -> dict[str, Array]:
    one, norm = np.ones(len(p)), np.float64(1.0 / n)
    return {  # torch: 0.5 d d while |d| < delta, else (|d| - 0.5 delta) delta; the linear
        # piece's slope is (1 / n rounded to the dtype) times delta
        "c": p, "h": 0.5 * one, "k2": one, "c0": 0.5 * p, "m": p,
        "k1": norm * one, "kl": dtype_round(norm, dtype) * p,
    }  # fmt: skip


def _value_of(d: Array, kwargs: Kwargs) -> Array:
    delta = kwargs["delta"]
    return np.where(np.abs(d) < delta, 0.5 * d**2, delta * (np.abs(d) - 0.5 * delta))


def fused_point(d: float, k: Array, c: int) -> tuple[float, float]:
    """Its Piecewise rule with k2 = 1: (h |d|) |d| and d k1 while |d| < delta, else
    (|d| - c0) m and sign(d) kl."""
    a, kink, h, c0, m, k1, kl = abs(d), k[C, c], k[H, c], k[C0, c], k[M, c], k[K1, c], k[KL, c]
    quad = a < kink  # loads first, then both sides and a choice: the loop vectorises
    term = (a * h) * a if quad else (a - c0) * m
    return term, d * k1 if quad else np.sign(d) * kl


LOSS = Loss(
    name="huber",
    torch="HuberLoss",
    kwargs=HuberKwargs,
    param="delta",
    value=_value_of,
    derivative=lambda d, k: np.where(np.abs(d) < k["delta"], d, k["delta"] * np.sign(d)),
    curvature=lambda d, k: (np.abs(d) < k["delta"]).astype(np.float64),
    solve=lambda x, y, k: newton(x, y, k["delta"]),
    unique=lambda x, y, w, b, k: unique_within(x, y, w, b, k["delta"]),
    batched=Piecewise(_coefficients),
    kinks=lambda k: (-k["delta"], k["delta"]),
    fused=Fused(fused_point, _coefficients),
)
