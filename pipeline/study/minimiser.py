"""The minimiser (w*, b*) of each loss of w * x + b on given data, found without any
optimizer run: the point an optimizer's result is measured against. Each loss's module
holds its solver and says when its minimiser is not unique (pipeline.losses).

Datasets come as rows, x and y of shape (datasets, n) (any leading shape works), each
row with at least two distinct x (else the slope is not identified: ValueError).
Where the minimisers form a set (L1's polygon, Huber's flat zone), `minimisers` returns
one of them (for L1 a line through two points, the one the descent reaches) and `unique`
says False; no minimum-norm choice is made.
"""

import numpy as np
import numpy.typing as npt

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
