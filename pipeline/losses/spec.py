"""What gradlab knows about a loss, as each loss module declares it.

A regression loss is a mean over the n points of a term l(d_i) of the error
d_i = w x_i + b - y_i. Its module gives the term and its derivatives in closed form
(NumPy: the oracle of every test, the contours of the plots, the curvature of the
stability edges), its minimiser on any data, torch's class, its params.yaml section, and
its rule in the batched engine, which must round as torch's kernel of that loss does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.fields import Section
from pipeline.lazy import np

if TYPE_CHECKING:
    import numpy.typing as npt
    from torch import Tensor, nn

    Array = npt.NDArray[np.float64]
    Mask = npt.NDArray[np.bool_]

Kwargs = Mapping[str, float]  # the loss's keyword arguments, as in params.yaml
Function = Callable[["Array", Kwargs], "Array"]  # of each error d, elementwise
Solver = Callable[["Array", "Array", Kwargs], tuple["Array", "Array"]]  # rows x, y -> (w, b)
Unique = Callable[["Array", "Array", "Array", "Array", Kwargs], "Mask"]  # rows, (w, b) -> only


@dataclass(frozen=True)
class Piecewise:
    """The batched engine's rule shared by losses that are quadratic near 0 and linear
    beyond (or one of the two): per point l(d) = (h |d|) |d| / k2 while |d| < c, else
    (|d| - c0) m; and dL/dy_hat = (d k1) / k2, else sign(d) kl. `coefficients(p, n, dtype)`
    gives them per cell (p: the loss's parameter, n points, dtype: numpy's float type the
    cell trains in), chosen so that each cell's values round as torch's kernel does."""

    coefficients: Callable[[Array, int, type], dict[str, Array]]


C, H, K2, C0, M, K1, KL = range(7)  # the rows of Piecewise's coefficients, in its order


@dataclass(frozen=True)
class Fused:
    """A loss's form in the fused engine (pipeline.engine.fused): `point(d, k, c)` gives
    the term l(d) and dL/dy_hat of cell c at one point (regression: d = y_hat - y;
    classification: u = z_y - z_other), k holding the cells' coefficient rows in the
    training dtype; written in numba's subset (pipeline.engine.fused.primitives), rounding
    as the loss's exact form does. `coefficients(p, n, dtype)` gives those rows per cell
    (p: the loss's parameter or label smoothing, n points), in `point`'s row order."""

    point: Callable[..., tuple[float, float]]
    coefficients: Callable[[Array, int, type], dict[str, Array]]


@dataclass(frozen=True)
class Pointwise:
    """A batched rule of a loss's own: `point(d, n)` gives per point the term l(d) and
    dL/dy_hat = l'(d) / n as tensors shaped like d (points, cells), in d's dtype."""

    point: Callable[[Tensor, int], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Loss:
    """A regression loss: everything gradlab knows about it."""

    name: str
    torch: str  # torch.nn's class, e.g. "HuberLoss": the reference engine's loss (or, for a
    # loss torch.nn lacks, the name of the class `module` builds)
    kwargs: type[Section]  # its section under train.losses
    param: str | None  # the keyword argument the engine's `loss_param` column carries
    value: Function  # l(d)
    derivative: Function  # l'(d); at a kink, torch's choice
    curvature: Function  # l''(d) (0 on linear pieces): the Hessian of the stability edges
    solve: Solver  # its minimiser on each row of x, y
    unique: Unique  # whether that minimiser is the only one
    batched: Piecewise | Pointwise
    module: Callable[..., nn.Module] | None = None  # for a loss torch.nn lacks: builds
    # the reference engine's module from its keyword arguments
    kinks: Callable[[Kwargs], tuple[float, ...]] = lambda _: ()  # the errors d where l
    # changes piece (other than 0): where its set of minimisers, if any, has corners
    fused: Fused | None = None  # its form in the fused engine (None: the study's fused
    # engine refuses its cells; tests/test_layout.py names it)


@dataclass(frozen=True)
class ClassLoss:
    """A classification loss of nn.Linear(2, 2) on two classes: per point, its term and
    derivative in u = z_label - z_other (batched, torch); label smoothing if it takes it."""

    name: str
    torch: str  # torch.nn's class
    point: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # (u, q) -> (term, dterm/du)
    smoothing: bool  # takes CrossEntropyLoss's label_smoothing
    fused: Fused | None = None  # its form in the fused engine, point(u, k, c)


def residuals(x: Array, y: Array, w: Array, b: Array) -> Array:
    """d = w x + b - y of each row (w, b: one per row)."""
    return (w[:, None] * x + b[:, None]) - y


def spread(x: Array, mask: Mask) -> Array:
    """max - min of x over the masked points of each row (0 with fewer than two)."""
    top = np.where(mask, x, -np.inf).max(axis=1)
    low = np.where(mask, x, np.inf).min(axis=1)
    return np.where(mask.sum(axis=1) >= 2, top - low, 0.0)


def dtype_round(value: float, dtype: type) -> float:
    """`value` rounded to `dtype` (numpy's float32 or float64) and back to a float."""
    return float(dtype(value))
