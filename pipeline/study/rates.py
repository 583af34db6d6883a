"""The learning rates the study tries: per optimizer, a log grid, the library's default and,
where there is one, fractions of the analytic stability edge; per configuration, the
tuned lr and the default, reported side by side."""

import numpy as np
import numpy.typing as npt

from pipeline import params
from pipeline.optimizers import OPTIMIZERS
from pipeline.study import stability

Array = npt.NDArray[np.float64]


Rates = dict[str, tuple[Array, npt.NDArray[np.str_]]]  # name -> (its lrs, each one's kind)


def lr_grid(p: params.LrGrid) -> Array:
    """10 ** (k / per_decade) for every k with the value in [low, high]."""
    k = p.exponents()
    return 10.0 ** (np.arange(k.start, k.stop) / p.per_decade)


def mse_edge(train: params.TrainParams, optimizer: params.OptimizerName, x: Array) -> float:
    """The analytic stability edge of `optimizer` on MSE for points x (y does not matter:
    MSE's Hessian is (2/n) X^T X)."""
    h = stability.hessian("mse", {}, x, np.zeros_like(x), 0.0, 0.0)
    hyper = getattr(train.optimizers, optimizer).model_dump()
    return float(stability.edge(optimizer, hyper, float(stability.lam_max(h))))


def lrs(p: params.Params, optimizer: params.OptimizerName, x: Array) -> Array:
    """The main part's learning rates of `optimizer` on points x, sorted, each once."""
    extra = [OPTIMIZERS[optimizer].default_lr]
    if stability.has_edge(optimizer):
        extra += [f * mse_edge(p.train, optimizer, x) for f in p.study.lr.near_edge]
    return np.unique(np.concatenate([lr_grid(p.study.lr), extra]))


def tuned_and_default(tuned: float, optimizer: str) -> tuple[Array, npt.NDArray[np.str_]]:
    """The reporting lrs of a configuration: its tuned lr, then the library's default."""
    return np.array([tuned, OPTIMIZERS[optimizer].default_lr]), np.array(["tuned", "default"])
