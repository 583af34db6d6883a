"""How fast gradient descent, heavy ball and Nesterov converge on a quadratic, in closed form,
and how fast a run did: the explorer's rate map and the points measured on it.

Closed form. torch's SGD along an eigenvector of the Hessian (eigenvalue a, plus weight
decay), with c = lr a, momentum mu and dampening tau, is a linear recurrence whose step
matrix (pipeline/optimizers/sgd.py derives it) has the characteristic polynomial
z^2 - T z + D:
    gradient descent (mu = 0):  z = 1 - c
    heavy ball:  T = 1 + mu - (1 - tau) c,              D = mu
    nesterov:    T = 1 + mu - c (1 + mu (1 - tau)),    D = mu (1 - c)
The error shrinks by rho, the largest |z| over both eigenvalues of the Hessian, per step
(asymptotically): rho < 1 converges, rho = 1 at the stability edge (sgd.edge), > 1 diverges.

Measured. A run's rate is exp of the least-squares slope of log ||(w, b) - minimiser||
over the second half of its steps before that distance reaches the dtype's rounding floor
(or the run stops): the asymptotic rate, past the start's transient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.lazy import np
from pipeline.optimizers import sgd

if TYPE_CHECKING:
    import numpy.typing as npt

    Array = npt.NDArray[np.float64]

KINDS = ("heavy", "nesterov")  # the two maps; gradient descent is both maps' mu = 0 row
FLOOR_ULPS = 100  # the rounding floor: this many machine epsilons of the minimiser's size


def radius(
    c: npt.ArrayLike, mu: npt.ArrayLike, nesterov: bool, dampening: npt.ArrayLike = 0.0
) -> Array:
    """The spectral radius of the step matrix of torch's SGD (momentum mu, dampening; plain
    gradient descent where mu = 0) along one eigenvector with lr * eigenvalue = c."""
    c, mu = np.asarray(c, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    undamped = 1.0 - np.asarray(dampening, dtype=np.float64)
    if nesterov:
        trace, det = 1.0 + mu - c * (1.0 + mu * undamped), mu * (1.0 - c)
    else:
        trace, det = 1.0 + mu - undamped * c, mu + 0.0 * c
    disc = trace * trace - 4.0 * det
    real = np.sqrt(np.maximum(disc, 0.0))
    roots = np.maximum(np.abs(trace + real), np.abs(trace - real)) / 2.0
    complex_pair = np.sqrt(np.abs(det))  # |z| of both roots when disc < 0
    # mu = 0: torch keeps no buffer and ignores dampening, z = 1 - c
    plain = np.abs(1.0 - c)
    return np.where(mu == 0, plain, np.where(disc >= 0, roots, complex_pair))  # type: ignore[no-any-return]


def rate(
    lr: npt.ArrayLike,
    mu: npt.ArrayLike,
    eigenvalues: Sequence[npt.ArrayLike],
    nesterov: bool,
    dampening: npt.ArrayLike = 0.0,
    weight_decay: npt.ArrayLike = 0.0,
) -> Array:
    """rho: the largest radius over the Hessian's eigenvalues (each plus weight_decay);
    every argument but `nesterov` may be an array (eigenvalues: one per eigenvalue)."""
    rates, decay = np.asarray(lr, dtype=np.float64), np.asarray(weight_decay, dtype=np.float64)
    radii = [
        radius(rates * (np.asarray(a, dtype=np.float64) + decay), mu, nesterov, dampening)
        for a in eigenvalues
    ]
    return np.maximum.reduce(radii)  # type: ignore[no-any-return]


def edge_factor(mu: float, nesterov: bool, dampening: float = 0.0) -> float:
    """lr * lam_max at the stability edge (pipeline.optimizers.sgd.edge with lam_max = 1)."""
    hyper = {"momentum": mu, "dampening": dampening}
    return float(sgd.edge(hyper, 1.0, nesterov=nesterov))


def eigenvalues(h: npt.ArrayLike) -> tuple[float, float]:
    """(smallest, largest) eigenvalue of a symmetric (2, 2) matrix."""
    m = np.asarray(h, dtype=np.float64)
    mid, half = 0.5 * (m[0, 0] + m[1, 1]), math.hypot(0.5 * (m[0, 0] - m[1, 1]), m[0, 1])
    return float(mid - half), float(mid + half)


def floor(target: npt.ArrayLike, dtype: str) -> Array:
    """The distance below which a run's error is rounding: FLOOR_ULPS epsilons of the
    size of its minimiser (targets (..., 2); at least 1)."""
    eps = float(np.finfo(np.dtype(dtype)).eps)
    size = np.hypot(*np.moveaxis(np.asarray(target, dtype=np.float64), -1, 0))
    return FLOOR_ULPS * eps * np.maximum(1.0, size)  # type: ignore[no-any-return]


def measured(errors: npt.ArrayLike, floor: npt.ArrayLike) -> Array:
    """The rate of each run whose distances to the minimiser were errors[..., t] after t
    steps (t = 0: the start; nan from a stop on): exp of the least-squares slope of log
    error over the second half of the steps before the first below its `floor`; nan
    where fewer than two steps are above it."""
    e = np.atleast_2d(np.asarray(errors, dtype=np.float64))
    low = np.asarray(floor, dtype=np.float64).reshape(-1, 1)
    below = ~np.isfinite(e) | (e <= low)
    last = np.where(below.any(axis=1), below.argmax(axis=1), e.shape[1]) - 1
    t = np.arange(e.shape[1], dtype=np.float64)
    window = (t >= (last // 2)[:, None]) & (t <= last[:, None])
    log_e = np.where(window, np.log(np.where(window, e, 1.0)), 0.0)
    n, st, stt = window.sum(axis=1), (window * t).sum(axis=1), (window * t * t).sum(axis=1)
    sl, stl = log_e.sum(axis=1), (log_e * t).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (n * stl - st * sl) / (n * stt - st * st)
    found = np.where(last >= 1, np.exp(slope), np.nan)
    return found.reshape(np.shape(errors)[:-1])  # type: ignore[no-any-return]
