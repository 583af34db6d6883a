"""Intervals on the study's aggregates, by the bootstrap over seeds, stratified by task.

Scores are (optimizers, tasks, runs): steps (lower is better, +inf for a miss) of each
optimizer on each task (scenario x loss) on each reporting seed. One bootstrap resample
draws, for each task independently, `runs` of its seeds with replacement (rliable's
stratified bootstrap) and keeps the pairing: every optimizer of a task gets the same seeds
(the same data and start), as in `stats.bootstrap_ci`. Each aggregate is recomputed on
every resample; its interval is the percentile interval, inf-aware (`stats._percentile`).
A ranking also states how often its top entry stays on top across resamples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.study import stats

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]
REPS_AT_ONCE = 250  # resamples held at once: (250, optimizers, tasks, runs) floats


def task_resamples(tasks: int, runs: int, reps: int, seed: int) -> Ints:
    """(reps, tasks, runs) seed indices: each task's runs drawn with replacement, every task
    on its own (the stream: rng = np.random.default_rng(seed); one integers call)."""
    return np.random.default_rng(seed).integers(0, runs, size=(reps, tasks, runs))


@dataclass(frozen=True)
class Interval:
    """A statistic over entries, with its percentile interval."""

    value: Floats
    lo: Floats
    hi: Floats

    @classmethod
    def of(cls, value: Floats, boot: Floats, level: float) -> Interval:
        """value (...) and its interval from the bootstrap statistics boot (reps, ...)."""
        ordered = np.moveaxis(np.sort(boot, axis=0), 0, -1)
        lo = stats._percentile(ordered, 100 * (1 - level) / 2)
        hi = stats._percentile(ordered, 100 * (1 + level) / 2)
        return cls(np.asarray(value, dtype=np.float64), lo, hi)


def _resampled(scores: Floats, indices: Ints) -> Floats:
    """(reps, optimizers, tasks, runs): scores with each task's runs replaced by indices."""
    tasks = np.arange(scores.shape[1])[None, :, None]
    return np.moveaxis(scores[:, tasks, indices], 0, 1)


def _batches(reps: int) -> list[slice]:
    return [slice(s, min(s + REPS_AT_ONCE, reps)) for s in range(0, reps, REPS_AT_ONCE)]


def profile_scores(
    scores: npt.ArrayLike, reps: int, seed: int, level: float, tau_max: float = 4.0
) -> tuple[Interval, Floats]:
    """(each optimizer's performance-profile score (`stats.profile_score` of the medians
    over runs) with its interval, each optimizer's share of resamples in which its score
    is the highest (ties count for each))."""
    s = stats._steps(scores)
    indices = task_resamples(s.shape[1], s.shape[2], reps, seed)
    boot = np.empty((reps, s.shape[0]))
    for part in _batches(reps):
        medians = np.median(_resampled(s, indices[part]), axis=-1)  # (r, optimizers, tasks)
        boot[part] = stats.profile_score(medians, tau_max)
    value = stats.profile_score(np.median(s, axis=-1), tau_max)
    top = (boot == boot.max(axis=1, keepdims=True)).mean(axis=0)
    return Interval.of(value, boot, level), top


def improvement(scores: npt.ArrayLike, reps: int, seed: int, level: float) -> Interval:
    """(optimizers, optimizers): P(optimizer i needs fewer steps than j) averaged over
    tasks (`stats.improvement_matrix`), with intervals. A resample weights each run by how
    often it was drawn, so P = w' C w / runs^2 with C the task's pairwise comparisons
    (1 where x_i < y_j, 1/2 where equal: two +inf tie): two matrix products per task."""
    s = stats._steps(scores)
    k, tasks, runs = s.shape
    indices = task_resamples(tasks, runs, reps, seed)
    rows = np.arange(reps * tasks)[:, None] * runs
    weights = np.bincount((rows + indices.reshape(-1, runs)).ravel(), minlength=reps * tasks * runs)
    weights = weights.reshape(reps, tasks, runs).astype(np.float64)
    a, b = np.triu_indices(k, 1)  # P(b beats a) = 1 - P(a beats b): half the pairs
    upper = np.zeros((reps, len(a)))
    for t in range(tasks):
        x, y = s[a, t][:, :, None], s[b, t][:, None, :]  # (pairs, runs, 1), (pairs, 1, runs)
        with np.errstate(invalid="ignore"):  # inf == inf is a tie
            c = (x < y) + 0.5 * (x == y)
        w = weights[:, t]  # (reps, runs)
        cw = np.einsum("pij,rj->rpi", c, w, optimize=True)
        upper += np.einsum("rpi,ri->rp", cw, w) / runs**2
    boot = np.full((reps, k, k), 0.5)
    boot[:, a, b] = upper / tasks
    boot[:, b, a] = 1 - boot[:, a, b]
    return Interval.of(stats.improvement_matrix(s), boot, level)


def best_counts(scores: npt.ArrayLike, budget: int, reps: int, seed: int, level: float) -> Interval:
    """Per optimizer, the number of tasks on which its interquartile mean of steps (a miss
    counted as budget + 1) is the lowest, ties shared equally, with intervals."""
    s = stats._steps(scores)
    counted = np.where(np.isinf(s), budget + 1.0, s)

    def count(iqm: Floats) -> Floats:  # (..., optimizers, tasks) -> (..., optimizers)
        best = iqm == iqm.min(axis=-2, keepdims=True)
        return (best / best.sum(axis=-2, keepdims=True)).sum(axis=-1)

    indices = task_resamples(s.shape[1], s.shape[2], reps, seed)
    boot = np.empty((reps, s.shape[0]))
    for part in _batches(reps):
        boot[part] = count(stats.iqm(_resampled(counted, indices[part])))
    return Interval.of(count(stats.iqm(counted)), boot, level)
