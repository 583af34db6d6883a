"""The largest learning rate at which torch's SGD (plain, heavy ball, Nesterov) converges
on a quadratic, from the loss's Hessian at the minimiser.

Hessian. Each loss is a mean of l(d_i) with d_i = (x_i, 1) . (w, b) - y_i, so
H = (1/n) sum_i l''(d_i) (x_i, 1)^T (x_i, 1) with l'' = 2 (mse), 1 while |d| < delta
(huber), 1 / beta while |d| < beta (smoothl1) and 0 elsewhere and for l1: mse gives
(2/n) X^T X with X = [x, 1]; Huber and smooth L1 count only the points in the
quadratic zone, and L1 has no curvature (H = 0, its kinks are not a quadratic).

Recurrence. torch.optim.SGD (torch/optim/sgd.py) with weight decay lam, momentum mu,
dampening tau steps g = grad + lam p, buf = mu buf + (1 - tau) g (buf = g at the first
step), then p -= lr buf, or p -= lr (g + mu buf) with nesterov. On a quadratic the
gradient is H (p - p*), so weight decay adds lam to every eigenvalue, and along an
eigenvector of H + lam I with eigenvalue a, with c = lr a, error e and u = lr buf:

    heavy ball:  u' = mu u + (1 - tau) c e,   e' = e - u'
                 M = [[1 - (1 - tau) c, -mu], [(1 - tau) c, mu]]
    nesterov:    u' = mu u + (1 - tau) c e,   e' = e - c e - mu u'
                 M = [[1 - c (1 + mu (1 - tau)), -mu^2], [(1 - tau) c, mu]]

z^2 - tr(M) z + det(M) has both roots inside the unit circle iff |det| < 1 and
|tr| < 1 + det (Jury). Heavy ball: det = mu and 1 + det + tr > 0 gives
c < 2 (1 + mu) / (1 - tau). Nesterov: det = mu (1 - c), and 1 + det + tr > 0 gives
c < 2 (1 + mu) / (1 + (2 - tau) mu), tighter than |det| < 1 (c < (1 + mu) / mu).
So, with lam_max the largest eigenvalue of H, the lr must stay below

    sgd (mu = 0):  2 / (lam_max + lam)            (torch ignores dampening here)
    heavy ball:    2 (1 + mu) / ((1 - tau) (lam_max + lam))
    nesterov:      2 (1 + mu) / ((1 + (2 - tau) mu) (lam_max + lam))

For tau = lam = 0 these are the textbook edges 2 / L, 2 (1 + mu) / L and
2 (1 + mu) / ((1 + 2 mu) L). torch refuses nesterov with dampening, so that case is
derived but never run. A zero eigenvalue (not identified along it) is marginal at any lr.
Adam, AdamW, RMSprop and Adagrad rescale each step by running gradient statistics: no
fixed linear recurrence, no closed-form edge (edge returns nan).
"""

from collections.abc import Callable, Mapping
from typing import overload

import numpy as np
import numpy.typing as npt

from pipeline.params import LossName, OptimizerName

Array = npt.NDArray[np.float64]
Kwargs = Mapping[str, float]  # the loss's keyword arguments, as in params.yaml
Hyper = Mapping[str, float | bool]  # the optimizer's keyword arguments (lr is not read)


def _mse(d: Array, kwargs: Kwargs) -> Array:
    return np.full_like(d, 2.0)


def _huber(d: Array, kwargs: Kwargs) -> Array:
    return (np.abs(d) < kwargs["delta"]).astype(np.float64)


def _smoothl1(d: Array, kwargs: Kwargs) -> Array:
    return (np.abs(d) < kwargs["beta"]) / kwargs["beta"]


# l''(d) of each loss's term, as closed_form's zones: strict |d| < beta (delta).
CURVATURE: dict[LossName, Callable[[Array, Kwargs], Array]] = {
    "mse": _mse,
    "l1": lambda d, _: np.zeros_like(d),
    "smoothl1": _smoothl1,
    "huber": _huber,
}


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
    curv = CURVATURE[loss]((ws * xs + bs) - ys, kwargs) / xs.shape[-1]
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
    """The largest stable lr of `optimizer` (built as model.make_optimizer builds it, from
    `hyper`: momentum, dampening, weight_decay, default 0) on a quadratic whose Hessian's
    largest eigenvalue is lam_max: inf without curvature, nan for adaptive optimizers."""
    if optimizer not in ("sgd", "momentum", "nesterov"):
        return np.full_like(lam_max, np.nan) if isinstance(lam_max, np.ndarray) else float("nan")
    mu, tau = float(hyper.get("momentum", 0.0)), float(hyper.get("dampening", 0.0))
    if not (0 <= mu < 1 and 0 <= tau < 1):
        raise ValueError(f"momentum {mu} and dampening {tau} must lie in [0, 1)")
    if mu == 0:
        factor = 2.0  # torch skips the buffer, and its dampening, without momentum
    elif optimizer == "nesterov" or hyper.get("nesterov", False):
        factor = 2 * (1 + mu) / (1 + (2 - tau) * mu)
    else:
        factor = 2 * (1 + mu) / (1 - tau)
    a = np.asarray(lam_max, dtype=np.float64) + float(hyper.get("weight_decay", 0.0))
    with np.errstate(divide="ignore"):
        lr = np.where(a > 0, factor / a, np.inf)
    return lr if isinstance(lam_max, np.ndarray) else float(lr)
