"""The minimiser (w*, b*) of each loss of w * x + b on given data, found without any
optimizer run: the point an optimizer's result is measured against.

Datasets come as rows, x and y of shape (datasets, n) (any leading shape works), each
row with at least two distinct x (else the slope is not identified: ValueError).

- mse: least squares, centred on the data's means (exact (2, 0) on y = 2x).
- l1: least absolute deviations. Some minimiser is a line through two data points, so
  Wesolowsky's descent (1981) pivots from point to point: the best line through pivot k
  is the weighted median of the slopes (y_i - y_k) / (x_i - x_k), weights |x_i - x_k|,
  and passes through a new pivot. The end is certified by the subgradient condition
  0 in dL(w, b) (exact in 2-D, see `_l1_certificate`); rows it fails (degenerate ties)
  are solved by trying every pivot. The line is computed from its two points, so clean
  data y = 2x gives exactly (2, 0).
- huber, smoothl1: smooth L1 with beta is Huber with delta = beta, divided by beta, so
  both share one solver: Newton steps with backtracking on the piecewise quadratic,
  each step the exact solution of the quadratic piece given the active set (points with
  |d| < delta are quadratic, the rest linear with their sign). It stops when that
  solution lands in its own active set: then the gradient vanishes up to rounding.

Not unique: L1's minimisers form a polygon when 0 lies on the boundary of the
subdifferential (e.g. x = 1, 2, 3, 4 and y = 0, 1, 1, 0); Huber's form a set when the
points of the quadratic zone have fewer than two distinct x (e.g. all points in the
linear zone: the loss is then flat nearby, like L1). `minimisers` then returns one
minimiser (for L1 a line through two points, the one the descent reaches) and `unique`
says False; no minimum-norm choice is made.
"""

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from pipeline.params import LossName

Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Index = npt.NDArray[np.intp]
Kwargs = Mapping[str, float]  # the loss's keyword arguments, as in params.yaml
Solver = Callable[[Array, Array, Kwargs], tuple[Array, Array]]  # rows x, y -> (w, b)
EPS = float(np.finfo(np.float64).eps)
NEWTON_STEPS = 200  # Huber: the active set settles in a handful; more means a bug


def minimisers(
    loss: LossName, kwargs: Kwargs, x: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[Array, Array]:
    """(w, b): the minimiser of the mean `loss` of each row of x, y, shaped like x[..., 0]."""
    xs, ys = _rows(x, y)
    w, b = SOLVERS[loss](xs, ys, kwargs)
    shape = np.shape(x)[:-1]
    return w.reshape(shape), b.reshape(shape)


def minimiser(
    loss: LossName, kwargs: Kwargs, x: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[float, float]:
    """(w, b) minimising the mean `loss` of w * x + b against y, for one dataset."""
    w, b = minimisers(loss, kwargs, np.reshape(x, (1, -1)), np.reshape(y, (1, -1)))
    return float(w[0]), float(b[0])


def unique(
    loss: LossName,
    kwargs: Kwargs,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    w: npt.ArrayLike,
    b: npt.ArrayLike,
) -> Mask:
    """Whether the minimiser (w, b) of each row is the only one (shaped like w)."""
    xs, ys = _rows(x, y)
    ws, bs = np.reshape(w, -1).astype(np.float64), np.reshape(b, -1).astype(np.float64)
    if loss == "mse":
        only = np.ones(ws.shape, dtype=bool)
    elif loss == "l1":
        only = _l1_certificate(xs, ys, ws, bs)[1]
    else:
        quad = np.abs(_residuals(xs, ys, ws, bs)) < _kink(loss, kwargs)
        only = _spread(xs, quad) > 0  # two distinct x in the quadratic zone: H > 0
    return only.reshape(np.shape(w))


def _rows(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[Array, Array]:
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim == 0:
        raise ValueError(f"x and y must have one shape (..., n): got {xs.shape} and {ys.shape}")
    xs, ys = xs.reshape(-1, xs.shape[-1]), ys.reshape(-1, ys.shape[-1])
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise ValueError("x and y must be finite")
    if xs.size and not (xs.max(axis=1) > xs.min(axis=1)).all():
        raise ValueError("each dataset needs two distinct x: else w and b are not identified")
    return xs, ys


def _residuals(x: Array, y: Array, w: Array, b: Array) -> Array:
    return (w[:, None] * x + b[:, None]) - y  # as closed_form: d = y_hat - y


def _kink(loss: LossName, kwargs: Kwargs) -> float:
    return kwargs["beta"] if loss == "smoothl1" else kwargs["delta"]


def _spread(x: Array, mask: Mask) -> Array:
    """max - min of x over the masked points of each row (0 with fewer than two)."""
    top = np.where(mask, x, -np.inf).max(axis=1)
    low = np.where(mask, x, np.inf).min(axis=1)
    return np.where(mask.sum(axis=1) >= 2, top - low, 0.0)


# --- mse -----------------------------------------------------------------------------
def _least_squares(x: Array, y: Array) -> tuple[Array, Array]:
    xm, ym = x.mean(axis=1), y.mean(axis=1)
    xc = x - xm[:, None]  # centred: well conditioned whatever the offset of x
    w = np.sum(xc * (y - ym[:, None]), axis=1) / np.sum(xc * xc, axis=1)
    return w, ym - w * xm


# --- l1 ------------------------------------------------------------------------------
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
    return w, b, j, np.abs(_residuals(x, y, w, b)).sum(axis=1)


def _l1_descent(x: Array, y: Array) -> tuple[Array, Array]:
    w0, b0 = _least_squares(x, y)
    pivot = np.argmin(np.abs(_residuals(x, y, w0, b0)), axis=1)  # start near the fit
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


def _l1_certificate(x: Array, y: Array, w: Array, b: Array) -> tuple[Mask, Mask]:
    """(optimal, unique) of each line from L1's subdifferential. With Z the points on the
    line and g = sum of sign(d_i) (x_i, 1) over the others, the subdifferential is g plus
    the zonotope sum_Z [-1, 1] (x_i, 1). In 2-D a point lies in that polygon iff it lies
    between each pair of edges; the normal of the edges along (x_j, 1) is (1, -x_j), so
    optimal <=> |sum_not Z s_i (x_i - x_j)| <= sum_Z |x_i - x_j| for every j in Z, and
    unique <=> all strictly (0 inside the subdifferential: the minimum is sharp)."""
    d = _residuals(x, y, w, b)
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
    flat = _spread(x, on) > 0  # the zonotope is 2-D: two points on the line
    return flat & (slack >= -tol).all(axis=1), flat & (slack > tol).all(axis=1)


def _least_absolute(x: Array, y: Array) -> tuple[Array, Array]:
    w, b = _l1_descent(x, y)
    for r in np.flatnonzero(~_l1_certificate(x, y, w, b)[0]):  # rare: ties stopped the descent
        n = x.shape[1]
        wt, bt, _, total = _through(np.tile(x[r], (n, 1)), np.tile(y[r], (n, 1)), np.arange(n))
        w[r], b[r] = wt[np.argmin(total)], bt[np.argmin(total)]
    return w, b


# --- huber and smoothl1 ------------------------------------------------------------
def _huber_value(x: Array, y: Array, w: Array, b: Array, delta: float) -> Array:
    a = np.abs(_residuals(x, y, w, b))
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
    now = _huber_value(x, y, w, b, delta)
    step, t = np.zeros_like(w), np.ones_like(w)
    for _ in range(60):
        left = np.flatnonzero(step == 0)
        if not left.size:
            break
        tl = t[left]
        new = _huber_value(
            x[left], y[left], w[left] + tl * dw[left], b[left] + tl * db[left], delta
        )
        lower = new < now[left]
        step[left[lower]] = tl[lower]
        t[left] *= 0.5
    return step


def _huber(x: Array, y: Array, delta: float) -> tuple[Array, Array]:
    w, b = _least_squares(x, y)
    far = ~(_spread(x, np.abs(_residuals(x, y, w, b)) < delta) > 0)
    if far.any():  # small delta: start on L1's line, through two points of the zone
        w[far], b[far] = _least_absolute(x[far], y[far])
    # on the summed gradient: 1e-14 of its size, or what rounding d = y_hat - y allows
    resolution = 1e-14 * delta + 4 * EPS * np.abs(y).max(axis=1)
    gtol = x.shape[1] * (1 + np.abs(x).max(axis=1)) * resolution
    todo = np.arange(x.shape[0])
    for _ in range(NEWTON_STEPS):
        if not todo.size:
            return w, b
        xt, yt, wt, bt = x[todo], y[todo], w[todo], b[todo]
        d = _residuals(xt, yt, wt, bt)
        quad = np.abs(d) < delta
        sign = np.where(quad, 0.0, np.sign(d))
        slope = np.where(quad, d, delta * sign)  # h'(d)
        wn, bn = _piece(xt, yt, quad, sign, delta)
        singular = ~(_spread(xt, quad) > 0)
        if singular.any():  # fewer than two distinct x in the zone: nothing to invert
            wn[singular], bn[singular] = _damped(
                xt[singular], quad[singular], slope[singular], wt[singular], bt[singular]
            )
        dn = _residuals(xt, yt, wn, bn)  # landed: the piece's minimiser is in its own piece
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


def _robust(loss: LossName) -> Solver:
    return lambda x, y, kwargs: _huber(x, y, _kink(loss, kwargs))


# Keyed like model.LOSSES: adding a loss means one solver here.
SOLVERS: dict[LossName, Solver] = {
    "mse": lambda x, y, _: _least_squares(x, y),
    "l1": lambda x, y, _: _least_absolute(x, y),
    "smoothl1": _robust("smoothl1"),
    "huber": _robust("huber"),
}
