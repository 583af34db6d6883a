"""Each loss in closed form for y_hat = w * x + b, in NumPy: its values for the contour
plots, and its gradients as the oracle autograd is checked against.

Every loss in model.LOSSES is a mean over n points of a term l(d_i) of the error
d_i = y_hat_i - y_i, so with g_i = dL/dy_hat_i = l'(d_i) / n the chain rule gives

    dL/dw = sum_i g_i x_i,    dL/db = sum_i g_i,    dL/dx_i = g_i w.

Plain float64 NumPy, no torch: importing it would cost the compare stage two seconds.
At the kinks l and l' follow torch's kernels: L1 takes sign(0) = 0; smooth L1 and Huber
are quadratic only while |d| < beta (delta).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.params import LossName

Array = npt.NDArray[np.float64]
Kwargs = Mapping[str, float]  # the loss's keyword arguments, as in params.yaml
Function = Callable[[Array, Kwargs], Array]  # of each error d, elementwise


@dataclass(frozen=True)
class Term:
    """One loss's term l(d) of the error d, and its derivative l'(d)."""

    value: Function
    derivative: Function


def _smoothl1(d: Array, kwargs: Kwargs) -> Array:
    beta = kwargs["beta"]  # l = d^2 / (2 beta) while |d| < beta, else |d| - beta / 2
    return np.where(np.abs(d) < beta, 0.5 * d**2 / beta, np.abs(d) - 0.5 * beta)


def _smoothl1_derivative(d: Array, kwargs: Kwargs) -> Array:
    beta = kwargs["beta"]
    return np.where(np.abs(d) < beta, d / beta, np.sign(d))


def _huber(d: Array, kwargs: Kwargs) -> Array:
    delta = kwargs["delta"]  # l = d^2 / 2 while |d| < delta, else delta (|d| - delta / 2)
    return np.where(np.abs(d) < delta, 0.5 * d**2, delta * (np.abs(d) - 0.5 * delta))


def _huber_derivative(d: Array, kwargs: Kwargs) -> Array:
    delta = kwargs["delta"]
    return np.where(np.abs(d) < delta, d, delta * np.sign(d))


# Keyed like model.LOSSES: adding a loss there means one entry here.
TERMS: dict[LossName, Term] = {
    "mse": Term(lambda d, _: np.square(d), lambda d, _: 2.0 * d),  # l = d^2
    "l1": Term(lambda d, _: np.abs(d), lambda d, _: np.sign(d)),  # l = |d|; sign(0) = 0
    "smoothl1": Term(_smoothl1, _smoothl1_derivative),
    "huber": Term(_huber, _huber_derivative),
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
    return TERMS[loss].derivative(d, kwargs) / d.size


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


# --- classification: nn.Linear(2, 2) under nn.CrossEntropyLoss ---------------------------
def softmax(z: Array) -> Array:
    """Row-wise softmax of logits z (n, classes), shifted by each row's max (no overflow)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def cross_entropy(
    w: Array, b: Array, x: Array, labels: Sequence[int], smoothing: float
) -> tuple[float, Array, Array]:
    """The mean cross-entropy of logits x W^T + b against `labels` with label smoothing,
    and its gradients dL/dW (classes, features) and dL/db (classes): with q the smoothed
    one-hot ((1 - smoothing) on the label, smoothing / classes everywhere),
    dL/dz_i = (softmax(z_i) - q_i) / n, dL/dW = sum_i dL/dz_i x_i^T, dL/db = sum_i dL/dz_i."""
    z = x @ w.T + b
    n, k = z.shape
    q = np.full((n, k), smoothing / k)
    q[np.arange(n), np.asarray(labels)] += 1.0 - smoothing
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    value = float(-(q * log_p).sum() / n)
    dz = (softmax(z) - q) / n
    return value, dz.T @ x, dz.sum(axis=0)
