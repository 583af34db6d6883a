"""The gradients of any loss of the linear model y_hat = w * x + b in closed form, in NumPy:
the oracle autograd is checked against (each loss's term l and derivative l' are in its
module, pipeline.losses).

Every loss is a mean over n points of a term l(d_i) of the error
d_i = y_hat_i - y_i, so with g_i = dL/dy_hat_i = l'(d_i) / n the chain rule gives

    dL/dw = sum_i g_i x_i,    dL/db = sum_i g_i,    dL/dx_i = g_i w.

Plain float64 NumPy, no torch: importing it would cost the compare stage two seconds.
At the kinks l and l' follow torch's kernels: L1 takes sign(0) = 0; smooth L1 and Huber
are quadratic only while |d| < beta (delta).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.losses import LOSSES
from pipeline.params import LossName

Array = npt.NDArray[np.float64]
Kwargs = Mapping[str, float]  # the loss's keyword arguments, as in params.yaml


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
    return LOSSES[loss].derivative(d, kwargs) / d.size


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
