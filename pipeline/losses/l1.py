"""Mean absolute error: l(d) = |d| (torch.nn.L1Loss), whose derivative at 0 is torch's
sign(0) = 0.

Its minimiser, least absolute deviations: some minimiser is a line through two data
points, so Wesolowsky's descent (1981) pivots from point to point: the best line through
pivot k is the weighted median of the slopes (y_i - y_k) / (x_i - x_k), weights
|x_i - x_k|, and passes through a new pivot. The end is certified by the subgradient
condition 0 in dL(w, b) (exact in 2-D, see `certificate`); rows it fails (degenerate ties)
are solved by trying every pivot. The line is computed from its two points, so clean data
y = 2x gives exactly (2, 0). The minimisers form a polygon when 0 lies on the boundary of
the subdifferential (e.g. x = 1, 2, 3, 4 and y = 0, 1, 1, 0): `unique` then says False.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.fields import NoKwargs
from pipeline.lazy import np
from pipeline.losses.mse import least_squares
from pipeline.losses.spec import KL, Fused, Kwargs, Loss, Piecewise, residuals, spread

if TYPE_CHECKING:
    import numpy.typing as npt

    from pipeline.losses.spec import Array, Mask

    Index = npt.NDArray[np.intp]

EPS = 2.0**-52  # float64's machine epsilon


def _through(x: Array, y: Array, k: Index) -> tuple[Array, Array, Array, Array]:
    """The best L1 line through point k of each row: (w, b, its other point, sum |d|)."""
    rows = np.arange(x.shape[0])
    xk, yk = x[rows, k][:, None], y[rows, k][:, None]
    dx, weight = x - xk, np.abs(x - xk)
    slope = np.divide(y - yk, dx, out=np.zeros_like(dx), where=weight > 0)
    order = np.argsort(slope, axis=1, kind="stable")
    cum = np.cumsum(np.take_along_axis(weight, order, axis=1), axis=1)
    median = np.argmax(cum >= 0.5 * cum[:, -1:], axis=1)  # a weight > 0 reaches it first
    j = order[rows, median]
    w = (y[rows, j] - yk[:, 0]) / (x[rows, j] - xk[:, 0])  # from the two points: exact lines
    b = yk[:, 0] - w * xk[:, 0]
    return w, b, j, np.abs(residuals(x, y, w, b)).sum(axis=1)


def _descent(x: Array, y: Array) -> tuple[Array, Array]:
    w0, b0 = least_squares(x, y)
    pivot = np.argmin(np.abs(residuals(x, y, w0, b0)), axis=1)  # start near the fit
    w, b, best = np.zeros_like(w0), np.zeros_like(w0), np.full_like(w0, np.inf)
    todo = np.arange(x.shape[0])
    noise = 8 * x.shape[1] * EPS  # relative error of a sum of n terms
    for _ in range(x.shape[1] + 10):  # each pass strictly lowers sum |d|
        if not todo.size:
            break
        wt, bt, j, total = _through(x[todo], y[todo], pivot[todo])
        better = total < best[todo] * (1 - noise)
        kept = todo[better]
        w[kept], b[kept], best[kept], pivot[kept] = wt[better], bt[better], total[better], j[better]
        todo = kept
    return w, b


def certificate(x: Array, y: Array, w: Array, b: Array) -> tuple[Mask, Mask]:
    """(optimal, unique) of each line from L1's subdifferential. With Z the points on the
    line and g = sum of sign(d_i) (x_i, 1) over the others, the subdifferential is g plus
    the zonotope sum_Z [-1, 1] (x_i, 1). In 2-D a point lies in that polygon iff it lies
    between each pair of edges; the normal of the edges along (x_j, 1) is (1, -x_j), so
    optimal <=> |sum_not Z s_i (x_i - x_j)| <= sum_Z |x_i - x_j| for every j in Z, and
    unique <=> all strictly (0 inside the subdifferential: the minimum is sharp)."""
    d = residuals(x, y, w, b)
    scale = np.abs(y).max(axis=1) + np.abs(w) * np.abs(x).max(axis=1) + np.abs(b)
    on = np.abs(d) <= 64 * EPS * scale[:, None]
    xc = x - x.mean(axis=1, keepdims=True)
    order = np.argsort(xc, axis=1)
    xs, zs = np.take_along_axis(xc, order, axis=1), np.take_along_axis(on, order, axis=1)
    sign = np.where(zs, 0.0, np.sign(np.take_along_axis(d, order, axis=1)))
    lhs = np.abs((sign * xs).sum(axis=1, keepdims=True) - sign.sum(axis=1, keepdims=True) * xs)
    count, total = np.cumsum(zs, axis=1), np.cumsum(zs * xs, axis=1)  # over x_i <= x_j
    rhs = (xs * count - total) + (total[:, -1:] - total) - xs * (count[:, -1:] - count)
    slack = np.where(zs, rhs - lhs, np.inf)
    tol = 1e-12 * x.shape[1] * (xs[:, -1] - xs[:, 0])[:, None]
    flat = spread(x, on) > 0  # the zonotope is 2-D: two points on the line
    return flat & (slack >= -tol).all(axis=1), flat & (slack > tol).all(axis=1)


def least_absolute(x: Array, y: Array) -> tuple[Array, Array]:
    """A least-absolute-deviations line of each row: the one the descent reaches."""
    w, b = _descent(x, y)
    for r in np.flatnonzero(~certificate(x, y, w, b)[0]):  # rare: ties stopped the descent
        n = x.shape[1]
        wt, bt, _, total = _through(np.tile(x[r], (n, 1)), np.tile(y[r], (n, 1)), np.arange(n))
        w[r], b[r] = wt[np.argmin(total)], bt[np.argmin(total)]
    return w, b


def _unique(x: Array, y: Array, w: Array, b: Array, kwargs: Kwargs) -> Mask:
    return certificate(x, y, w, b)[1]


def _coefficients(p: Array, n: int, dtype: type) -> dict[str, Array]:
    one, norm = np.ones(len(p)), np.float64(1.0 / n)
    return {  # linear everywhere (c = 0): |d| and dL/dy_hat = sign(d) / n, as torch rounds
        "c": 0 * one, "h": 0.5 * one, "k2": one, "c0": 0 * one, "m": one,
        "k1": norm * one, "kl": norm * one,
    }  # fmt: skip


def fused_point(d: float, k: Array, c: int) -> tuple[float, float]:
    """Its Piecewise rule with c = 0 (never quadratic): |d| and sign(d) kl."""
    return abs(d), np.sign(d) * k[KL, c]


LOSS = Loss(
    name="l1",
    torch="L1Loss",
    kwargs=NoKwargs,
    param=None,
    value=lambda d, _: np.abs(d),
    derivative=lambda d, _: np.sign(d),  # torch's sign(0) = 0
    curvature=lambda d, _: np.zeros_like(d),  # no curvature: its kinks are not a quadratic
    solve=lambda x, y, _: least_absolute(x, y),
    unique=_unique,
    batched=Piecewise(_coefficients),
    fused=Fused(fused_point, _coefficients),
)
