"""Closed-form gradients of each loss for y_hat = w * x + b: the oracle autograd is checked against.

Every loss in LOSSES is a mean over n points of a term l(d_i) of the error
d_i = y_hat_i - y_i, so with g_i = dL/dy_hat_i = l'(d_i) / n the chain rule gives

    dL/dw = sum_i g_i x_i,    dL/db = sum_i g_i,    dL/dx_i = g_i w.

Plain float64 NumPy, no autograd. At the kinks l' follows torch's backward kernels:
L1 takes sign(0) = 0; smooth L1 and Huber are quadratic only while |d| < beta (delta).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.params import LossName

Array = npt.NDArray[np.float64]
Kwargs = Mapping[str, float]  # the loss's keyword arguments, as in params.yaml
Derivative = Callable[[Array, Kwargs], Array]  # l'(d) for each error d


def _mse(d: Array, kwargs: Kwargs) -> Array:
    return 2.0 * d  # l = d^2


def _l1(d: Array, kwargs: Kwargs) -> Array:
    return np.sign(d)  # l = |d|; sign(0) = 0 is the subgradient torch uses


def _smoothl1(d: Array, kwargs: Kwargs) -> Array:
    beta = kwargs["beta"]  # l = d^2 / (2 beta) while |d| < beta, else |d| - beta / 2
    return np.where(np.abs(d) < beta, d / beta, np.sign(d))


def _huber(d: Array, kwargs: Kwargs) -> Array:
    delta = kwargs["delta"]  # l = d^2 / 2 while |d| < delta, else delta (|d| - delta / 2)
    return np.where(np.abs(d) < delta, d, delta * np.sign(d))


# Keyed like model.LOSSES: adding a loss there means one line here.
DERIVATIVES: dict[LossName, Derivative] = {
    "mse": _mse,
    "l1": _l1,
    "smoothl1": _smoothl1,
    "huber": _huber,
}


@dataclass(frozen=True)
class Gradients:
    weight: float  # dL/dw
    bias: float  # dL/db
    inputs: tuple[float, ...]  # dL/dx_i, one per point


def per_point(
    loss: LossName, kwargs: Kwargs, w: float, b: float, x: Sequence[float], y: Sequence[float]
) -> Array:
    """g_i = dL/dy_hat_i: the loss's derivative at each point's error, divided by n."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    d = (w * xs + b) - ys
    return DERIVATIVES[loss](d, kwargs) / d.size


def gradients(
    loss: LossName, kwargs: Kwargs, w: float, b: float, x: Sequence[float], y: Sequence[float]
) -> Gradients:
    """dL/dw, dL/db and each dL/dx_i of the mean `loss` of w * x + b against y."""
    g = per_point(loss, kwargs, w, b, x, y)
    xs = np.asarray(x, dtype=np.float64)
    return Gradients(
        weight=float(np.sum(g * xs)),
        bias=float(np.sum(g)),
        inputs=tuple(float(v) for v in g * w),
    )


def sgd_step(w: float, b: float, grads: Gradients, lr: float) -> tuple[float, float]:
    """(w, b) after one plain SGD step: each parameter minus lr times its gradient."""
    return w - lr * grads.weight, b - lr * grads.bias
