"""A cell's target and what both engines measure against it at every step.

The target is the set of minimisers of the cell's loss on its data: a point, or, where
they are not unique (L1's balanced points, Huber's and smooth L1's flat stretches), a
convex polygon (pipeline.polygon). Cells carry it padded: (cells, V, 2), each polygon's
last vertex repeated up to V, so a point is one vertex repeated. A cell is within tol
after a step when its (w, b) is within tol of the set.

Per cell, over the observations after step 0, 1, ..., steps (a stopped cell's are not its
own): the first one within tol (the first touch), the last one outside (the sustained step
is the one after it), and from the first touch on, the share within tol and the largest
distance (the excursion). The point's distance is sqrt(fma(db, db, dw * dw)) in the
training dtype, with IEEE's sqrt (both engines: the same bits); a polygon's in
float64, from its vertices rounded to the training dtype; both compare, in float64, with
tol rounded to the training dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.lazy import np, torch
from pipeline.polygon import distances

if TYPE_CHECKING:
    import numpy.typing as npt
    from torch import Tensor

    Floats = npt.NDArray[np.float64]
    Ints = npt.NDArray[np.int64]

NEVER = np.iinfo(np.int64).max


def padded(target: npt.ArrayLike, n: int) -> Floats:
    """(n, V, 2) float64: a target (2,) for every cell, points (n, 2), or padded polygons
    (n, V, 2) as given."""
    t = np.asarray(target, dtype=np.float64)
    if t.ndim == 3:
        return np.broadcast_to(t, (n, *t.shape[1:]))
    return np.broadcast_to(t.reshape(-1, 2), (n, 2))[:, None, :]


def vertices(target: Floats) -> Ints:
    """Each padded polygon's number of vertices (its repeats of the last one not counted)."""
    repeats = (target[:, 1:] == target[:, :-1]).all(axis=2)
    return 1 + (~repeats).sum(axis=1)


@dataclass(frozen=True)
class Measures:
    """Per cell, in the order given."""

    reached: Ints  # steps taken at the first observation within tol; -1 never
    sustained: Ints  # the first step count from which it stays within tol; -1 never/diverged
    touch_share: Floats  # share of observations within tol from the first touch on; nan never
    excursion: Floats  # largest distance to the target from the first touch on; nan never
    error: Floats  # distance of the final (w, b) to the target, float64


def none(n: int) -> Measures:
    """The measures of cells trained without a target."""
    nan, never = np.full(n, np.nan), np.full(n, -1)
    return Measures(reached=never, sustained=never, touch_share=nan, excursion=nan, error=nan)


class Target:
    """The exact engine's running measures of sorted cells against their targets."""

    def __init__(self, target: Floats, tol: Floats, p: Tensor) -> None:
        """target (cells, V, 2) and tol (cells,) of the sorted cells; p (2, cells): their
        initial parameters (a cell that starts within tol reached it after 0 steps)."""
        self.point = torch.from_numpy(np.ascontiguousarray(target[:, 0].T)).to(p.dtype)
        self.tol = torch.from_numpy(np.ascontiguousarray(tol)).to(p.dtype).numpy().astype(float)
        self.shaped = np.flatnonzero(vertices(target) > 1)  # the cells whose target is a set
        # in the training dtype, as the fused engine holds them
        self.targets = torch.from_numpy(target).to(p.dtype).numpy().astype(np.float64)
        self.polygons = self.targets[self.shaped]
        n = p.shape[1]
        self.diff, self.dist = torch.empty_like(p), torch.empty(n, dtype=p.dtype)
        self.reached, self.last_out = np.full(n, NEVER), np.full(n, -1)
        self.after, self.inside = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.excursion = np.full(n, np.nan)
        self.update(p, 0, np.ones(n, dtype=bool))

    def distance(self, p: Tensor) -> Floats:
        """Each cell's distance to its target, float64."""
        torch.sub(p, self.point, out=self.diff)
        torch.mul(self.diff[0], self.diff[0], out=self.dist).addcmul_(self.diff[1], self.diff[1])
        found = np.sqrt(self.dist.numpy()).astype(np.float64)  # IEEE's, as the fused engine's
        if len(self.shaped):
            at = p.numpy()[:, self.shaped].T.astype(np.float64)
            found[self.shaped] = distances(at, self.polygons)
        return found

    def final(self, p: Tensor) -> Floats:
        """Each cell's final (w, b)'s distance to its target set, float64."""
        return final_distance(p.numpy(), self.targets)

    def update(self, p: Tensor, taken: int, alive: npt.NDArray[np.bool_]) -> None:
        """Observe the alive cells after `taken` steps."""
        d = self.distance(p)
        within = d <= self.tol
        self.reached = np.where(alive & within & (self.reached == NEVER), taken, self.reached)
        self.last_out = np.where(alive & ~within, taken, self.last_out)
        touched = alive & (self.reached <= taken)
        self.after += touched
        self.inside += touched & within
        self.excursion = np.where(touched, np.fmax(self.excursion, d), self.excursion)

    def measures(self, p: Tensor, steps: int, kept: Ints, unsort: Ints) -> Measures:
        """The measures after `steps` steps, p the final parameters (sorted)."""
        return summarise(
            self.reached, self.last_out, self.after, self.inside, self.excursion,
            self.final(p), steps, kept, unsort,
        )  # fmt: skip


def final_distance(p: npt.ArrayLike, target: Floats) -> Floats:
    """Each cell's (w, b) (p: (2, cells), any dtype)'s distance to its padded target set
    (cells, V, 2), in float64 (a point's: the hypotenuse)."""
    return distances(np.asarray(p, dtype=np.float64).T, target)


def summarise(
    reached: Ints, last_out: Ints, after: Ints, inside: Ints, excursion: Floats,
    error: Floats, steps: int, kept: Ints, unsort: Ints,
) -> Measures:  # fmt: skip
    """Measures from the running counts of sorted cells (reached: NEVER or -1 if never),
    in the order given; `kept`: each cell's steps kept, in the order given."""
    r, last = reached[unsort], last_out[unsort]
    touched = (r >= 0) & (r != NEVER)
    diverged = kept < steps
    return Measures(
        reached=np.where(touched, r, -1),
        sustained=np.where(diverged | (last >= steps), -1, last + 1),
        touch_share=np.where(touched, inside[unsort] / np.maximum(after[unsort], 1), np.nan),
        excursion=np.where(touched, excursion[unsort], np.nan),
        error=error[unsort],
    )
