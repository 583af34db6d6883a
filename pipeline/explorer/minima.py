"""What the explorer's surface view draws beside a path, per data set and loss: the
minimiser, or the set of them (a polygon: the study's target), and the Hessian's
eigenvalues there, which
the rate map's closed form takes (pipeline.explorer.rates)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.explorer import rates
from pipeline.losses import LOSSES
from pipeline.study import minimiser, stability

Point = tuple[float, float]


@dataclass(frozen=True)
class Minimum:
    """The minimiser (w, b) of one loss on one data set, and what is known around it."""

    w: float
    b: float
    unique: bool
    polygon: list[Point]  # the set of minimisers (L1's, Huber's flat stretches), counter-
    # clockwise (minimiser.sets, the study's target; empty when unique)
    eigenvalues: tuple[float, float]  # of the Hessian at (w, b), smallest first

    def to_json(self) -> dict[str, object]:
        return {
            "w": self.w,
            "b": self.b,
            "unique": self.unique,
            "polygon": [list(p) for p in self.polygon],
            "eigenvalues": list(self.eigenvalues),
        }


def minimum(
    loss: str, kwargs: Mapping[str, float], x: Sequence[float], y: Sequence[float]
) -> Minimum:
    """The minimiser of the mean `loss` (with its keyword arguments) of w x + b against y."""
    w, b = minimiser.minimiser(loss, kwargs, x, y)
    (found,) = minimiser.sets(loss, kwargs, [x], [y])  # the study's target: one home
    unique = len(found) == 1
    polygon = [] if unique else [(float(p[0]), float(p[1])) for p in found]
    h = stability.hessian(loss, kwargs, np.asarray(x), np.asarray(y), w, b)  # type: ignore[arg-type]
    return Minimum(w, b, unique, polygon, rates.eigenvalues(h))


def losses_kwargs(kwargs: Mapping[str, Mapping[str, object]]) -> dict[str, dict[str, float]]:
    """Each regression loss's keyword arguments as floats (params' train.losses)."""
    return {
        name: {k: float(v) for k, v in section.items()}  # type: ignore[arg-type]
        for name, section in kwargs.items()
        if name in LOSSES
    }
