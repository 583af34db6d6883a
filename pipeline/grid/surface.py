"""A loss over the (weight, bias) plane: the contours the plots draw paths over."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes

from pipeline.grid import Cell
from pipeline.losses import LOSSES

Array = npt.NDArray[np.float64]
Bounds = tuple[float, float, float, float]  # weight min, weight max, bias min, bias max
Point = tuple[float, float]  # (weight, bias)
RESOLUTION = 60  # contour grid points per axis


def bounds(optimum: Point, points: Sequence[Array]) -> Bounds:
    """A frame around the optimum and every (weight, bias) row of `points`, padded by a
    tenth of its size on each side (at least 0.25)."""
    stacked = np.vstack([np.array([optimum]), *points])
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    pad = np.maximum((high - low) * 0.1, 0.25)
    return (low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1])


@dataclass(frozen=True)
class Surface:
    """One loss over a (weight, bias) grid, averaged over the data points."""

    weights: Array
    biases: Array
    values: Array  # mean loss, [bias index, weight index]
    bounds: Bounds

    @classmethod
    def of(cls, cell: Cell, x: Array, y: Array, bounds: Bounds) -> "Surface":
        """The loss of `cell` (with its keyword arguments) on the points x, y."""
        kwargs = {k: float(v) for k, v in cell.loss_kwargs.items() if isinstance(v, int | float)}
        w = np.linspace(bounds[0], bounds[1], RESOLUTION)
        b = np.linspace(bounds[2], bounds[3], RESOLUTION)
        errors = w[None, :, None] * x + b[:, None, None] - y
        values = LOSSES[cell.loss].value(errors, kwargs).mean(axis=-1)
        return cls(w, b, values, bounds)

    def draw(self, ax: Axes, optimum: Point) -> None:
        """Log-spaced contour lines, the optimum as a star, the axes fixed to the bounds."""
        top = float(self.values.max())
        if top > 0:  # log-spaced: the valley near the optimum matters most
            levels = np.geomspace(max(float(self.values.min()), top * 1e-4), top, 12)[:-1]
            ax.contour(
                self.weights,
                self.biases,
                self.values,
                levels=levels,
                cmap="Greys_r",
                linewidths=0.6,
                alpha=0.6,
            )
        ax.plot(*optimum, "*", color="black", markersize=10, zorder=3)
        ax.set_xlim(self.bounds[0], self.bounds[1])
        ax.set_ylim(self.bounds[2], self.bounds[3])
        ax.set_xlabel("weight")
        ax.set_ylabel("bias")
