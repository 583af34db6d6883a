"""The largest learning rate at which gradient descent converges on a quadratic, from the
loss's Hessian at the minimiser: each loss's module gives its curvature l''(d)
(pipeline.losses), each optimizer with a closed form its edge as a function of the
Hessian's largest eigenvalue (pipeline.optimizers.sgd derives torch's SGD, heavy ball and
Nesterov). Adam, AdamW, RMSprop and Adagrad rescale each step by running gradient
statistics: no fixed linear recurrence, no closed-form edge (edge returns nan).

Hessian. Each loss is a mean of l(d_i) with d_i = (x_i, 1) . (w, b) - y_i, so
H = (1/n) sum_i l''(d_i) (x_i, 1)^T (x_i, 1): mse gives (2/n) X^T X with X = [x, 1];
Huber and smooth L1 count only the points in the quadratic zone, and L1 has no curvature
(H = 0, its kinks are not a quadratic).
"""

from collections.abc import Mapping
from typing import overload

import numpy as np
import numpy.typing as npt

from pipeline.losses import LOSSES
from pipeline.optimizers import OPTIMIZERS
from pipeline.params import LossName, OptimizerName

Array = npt.NDArray[np.float64]
Kwargs = Mapping[str, float]  # the loss's keyword arguments, as in params.yaml
Hyper = Mapping[str, float | bool]  # the optimizer's keyword arguments (lr is not read)


def hessian(
    loss: LossName,
    kwargs: Kwargs,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    w: npt.ArrayLike,
    b: npt.ArrayLike,
) -> Array:
    """The (2, 2) Hessian in (w, b) of the mean `loss` at (w, b); x, y of shape (..., n)
    and w, b of shape (...) give shape (..., 2, 2)."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ws, bs = np.asarray(w, dtype=np.float64)[..., None], np.asarray(b, dtype=np.float64)[..., None]
    curv = LOSSES[loss].curvature((ws * xs + bs) - ys, kwargs) / xs.shape[-1]
    hww, hwb, hbb = (curv * xs * xs).sum(axis=-1), (curv * xs).sum(axis=-1), curv.sum(axis=-1)
    return np.stack([np.stack([hww, hwb], axis=-1), np.stack([hwb, hbb], axis=-1)], axis=-2)


def lam_max(h: npt.ArrayLike) -> Array:
    """The largest eigenvalue of each symmetric (2, 2) matrix in h (..., 2, 2)."""
    hs = np.asarray(h, dtype=np.float64)
    a, c, d = hs[..., 0, 0], hs[..., 0, 1], hs[..., 1, 1]
    return 0.5 * (a + d) + np.hypot(0.5 * (a - d), c)  # hypot: no overflow, no cancellation


@overload
def edge(optimizer: OptimizerName, hyper: Hyper, lam_max: float) -> float: ...
@overload
def edge(optimizer: OptimizerName, hyper: Hyper, lam_max: Array) -> Array: ...
def edge(optimizer: OptimizerName, hyper: Hyper, lam_max: float | Array) -> float | Array:
    """The largest stable lr of `optimizer` (with the settings `hyper`) on a quadratic
    whose Hessian's largest eigenvalue is lam_max: inf without curvature, nan where the
    optimizer has no closed-form edge."""
    rule = OPTIMIZERS[optimizer].edge
    if rule is None:
        return np.full_like(lam_max, np.nan) if isinstance(lam_max, np.ndarray) else float("nan")
    return rule(hyper, lam_max)  # type: ignore[arg-type]


def has_edge(optimizer: OptimizerName) -> bool:
    """Whether `optimizer` has a closed-form stability edge."""
    return OPTIMIZERS[optimizer].edge is not None
