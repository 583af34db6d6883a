"""The minimiser (w*, b*) of each loss of w * x + b on given data, found without any
optimizer run: the point an optimizer's result is measured against. Each loss's module
holds its solver and says when its minimiser is not unique (pipeline.losses).

Datasets come as rows, x and y of shape (datasets, n) (any leading shape works), each
row with at least two distinct x (else the slope is not identified: ValueError).
Where the minimisers form a set (L1's polygon, Huber's flat zone), `minimisers` returns
one of them (for L1 a line through two points, the one the descent reaches), `unique`
says False and `sets` gives the whole set, a convex polygon.

Why the set is exact: on it the loss is constant, so each point's term l(d_i) is affine
along it; a term is affine only where d_i is constant or stays on one linear piece. So
every corner of the set is where two lines d_i = c_i, d_j = c_j cross, each c a kink of
the loss (0, or +-delta for Huber), or d_i at the solver's minimiser (a point held in a
quadratic zone). `sets` crosses all those lines, keeps the crossings where the loss is
minimal (up to rounding) and takes their convex hull.
"""

import numpy as np
import numpy.typing as npt

from pipeline import polygon
from pipeline.losses import LOSSES
from pipeline.losses.spec import Kwargs
from pipeline.params import LossName

Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


def minimisers(
    loss: LossName, kwargs: Kwargs, x: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[Array, Array]:
    """(w, b): the minimiser of the mean `loss` of each row of x, y, shaped like x[..., 0]."""
    xs, ys = _rows(x, y)
    w, b = LOSSES[loss].solve(xs, ys, kwargs)
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
    return LOSSES[loss].unique(xs, ys, ws, bs, kwargs).reshape(np.shape(w))


ROUNDING = 1e-9  # a crossing is a minimiser when within this share of the minimum's size


def sets(loss: LossName, kwargs: Kwargs, x: npt.ArrayLike, y: npt.ArrayLike) -> list[Array]:
    """The set of minimisers of each row's mean `loss`, as a convex polygon (vertices, 2),
    counter-clockwise; one vertex where the minimiser is unique."""
    xs, ys = _rows(x, y)
    w, b = LOSSES[loss].solve(xs, ys, kwargs)
    only = LOSSES[loss].unique(xs, ys, w, b, kwargs)
    out = [np.array([[wi, bi]]) for wi, bi in zip(w.tolist(), b.tolist(), strict=True)]
    for r in np.flatnonzero(~only):
        out[r] = _polygon(loss, kwargs, xs[r], ys[r], w[r], b[r])
    return out


def _polygon(loss: LossName, kwargs: Kwargs, x: Array, y: Array, w: float, b: float) -> Array:
    """The minimisers of one dataset whose solver's minimiser (w, b) is not unique."""
    spec = LOSSES[loss]
    d = w * x + b - y
    offsets = np.array([0.0, *spec.kinks(kwargs)])
    xi = np.concatenate([np.repeat(x, len(offsets)), x])  # lines w x_i + b = y_i + c
    yi = np.concatenate([(y[:, None] + offsets).ravel(), y + d])
    i, j = np.triu_indices(len(xi), 1)
    i, j = i[xi[i] != xi[j]], j[xi[i] != xi[j]]
    wc = (yi[j] - yi[i]) / (xi[j] - xi[i])
    bc = yi[i] - wc * xi[i]
    wc, bc = np.append(wc, w), np.append(bc, b)
    value = spec.value(wc[:, None] * x + bc[:, None] - y, kwargs).mean(axis=1)
    best = value.min()
    scale = max(best, float(np.abs(y - y.mean()).mean()) * 1e-6, 1e-300)
    keep = value <= best + ROUNDING * scale
    size = 1.0 + abs(w) + abs(b)
    return polygon.hull(np.stack([wc[keep], bc[keep]], axis=1) + 0.0, merge=1e-12 * size)


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
