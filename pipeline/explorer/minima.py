"""What the explorer's surface view draws beside a path, per data set and loss: the
minimiser, or the set of them (L1's polygon), and the Hessian's eigenvalues there, which
the rate map's closed form takes (pipeline.explorer.rates)."""

from __future__ import annotations

import itertools
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
    polygon: list[Point]  # L1's set of minimisers, in order around it (empty when unique)
    eigenvalues: tuple[float, float]  # of the Hessian at (w, b), smallest first

    def to_json(self) -> dict[str, object]:
        return {
            "w": self.w,
            "b": self.b,
            "unique": self.unique,
            "polygon": [list(p) for p in self.polygon],
            "eigenvalues": list(self.eigenvalues),
        }


def hull(points: Sequence[Point]) -> list[Point]:
    """The convex hull of `points`, counter-clockwise, each vertex once (Andrew's chain)."""
    ordered = sorted(set(points))
    if len(ordered) < 3:
        return ordered

    def half(chain: Sequence[Point]) -> list[Point]:
        out: list[Point] = []
        for p in chain:
            while len(out) >= 2 and _turn(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    return half(ordered) + half(ordered[::-1])


def _turn(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def l1_set(x: Sequence[float], y: Sequence[float]) -> list[Point]:
    """L1's minimisers: L1 is piecewise linear in (w, b), so its set of minimisers is the
    convex hull of the optimal lines through two data points (its vertices)."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    lines = []
    for i, j in itertools.combinations(range(len(xs)), 2):
        if xs[i] != xs[j]:
            w = (ys[j] - ys[i]) / (xs[j] - xs[i])
            lines.append((float(w), float(ys[i] - w * xs[i])))
    lines = list(dict.fromkeys(lines))
    total = np.array([np.abs(w * xs + b - ys).sum() for w, b in lines])
    best = total.min()
    return hull([p for p, t in zip(lines, total, strict=True) if t <= best * (1 + 1e-12)])


def minimum(
    loss: str, kwargs: Mapping[str, float], x: Sequence[float], y: Sequence[float]
) -> Minimum:
    """The minimiser of the mean `loss` (with its keyword arguments) of w x + b against y."""
    w, b = minimiser.minimiser(loss, kwargs, x, y)
    unique = bool(minimiser.unique(loss, kwargs, [x], [y], [w], [b])[0])
    polygon = l1_set(x, y) if loss == "l1" and not unique else []
    h = stability.hessian(loss, kwargs, np.asarray(x), np.asarray(y), w, b)  # type: ignore[arg-type]
    return Minimum(w, b, unique, polygon, rates.eigenvalues(h))


def losses_kwargs(kwargs: Mapping[str, Mapping[str, object]]) -> dict[str, dict[str, float]]:
    """Each regression loss's keyword arguments as floats (params' train.losses)."""
    return {
        name: {k: float(v) for k, v in section.items()}  # type: ignore[arg-type]
        for name, section in kwargs.items()
        if name in LOSSES
    }
