"""Intervals on the study's aggregates (pipeline.study.uncertainty) against the bootstrap
written out as loops: for each resample, each task's seeds redrawn, then stats' own
aggregate on the resampled scores."""

import numpy as np
import pytest

from pipeline.study import stats, uncertainty

LEVEL = 0.95


def scores(seed: int, optimizers: int = 4, tasks: int = 5, runs: int = 12) -> np.ndarray:
    """Steps with ties, misses (+inf) and one optimizer clearly faster."""
    rng = np.random.default_rng(seed)
    s = rng.integers(10, 60, (optimizers, tasks, runs)).astype(float)
    s[0] -= 8  # the fastest
    s[rng.random(s.shape) < 0.1] = np.inf
    return s


def looped(s: np.ndarray, reps: int, seed: int, aggregate) -> np.ndarray:
    """(reps, ...): the aggregate of each resample, built one task at a time."""
    indices = uncertainty.task_resamples(s.shape[1], s.shape[2], reps, seed)
    out = []
    for r in range(reps):
        resampled = np.stack([s[:, t, indices[r, t]] for t in range(s.shape[1])], axis=1)
        out.append(aggregate(resampled))
    return np.array(out)


def percentile_interval(boot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)


def test_resamples_draw_each_task_on_its_own_from_one_stream() -> None:
    """Indices are in range, tasks differ, and the stream is numpy's documented one."""
    got = uncertainty.task_resamples(3, 7, 50, seed=5)
    assert got.shape == (50, 3, 7) and got.min() >= 0 and got.max() <= 6
    assert not (got[:, 0] == got[:, 1]).all()
    want = np.random.default_rng(5).integers(0, 7, size=(50, 3, 7))
    assert (got == want).all()


@pytest.mark.parametrize("seed", range(3))
def test_profile_score_intervals_equal_the_loop(seed: int) -> None:
    """Each resample's profile score of the per-task medians; the share on top."""
    s = scores(seed)
    interval, top = uncertainty.profile_scores(s, 300, seed, LEVEL)

    boot = looped(s, 300, seed, lambda r: stats.profile_score(np.median(r, axis=-1)))
    lo, hi = percentile_interval(boot)
    np.testing.assert_allclose(interval.value, stats.profile_score(np.median(s, axis=-1)))
    np.testing.assert_allclose(interval.lo, lo, rtol=1e-12)
    np.testing.assert_allclose(interval.hi, hi, rtol=1e-12)
    np.testing.assert_allclose(top, (boot == boot.max(axis=1, keepdims=True)).mean(axis=0))
    assert top[0] > 0.5  # the clearly faster optimizer is mostly on top


@pytest.mark.parametrize("seed", range(3))
def test_improvement_intervals_equal_the_loop(seed: int) -> None:
    """The weighted form equals recomputing the matrix on each resample (inf ties)."""
    s = scores(seed)
    interval = uncertainty.improvement(s, 200, seed, LEVEL)

    boot = looped(s, 200, seed, stats.improvement_matrix)
    lo, hi = percentile_interval(boot)
    np.testing.assert_allclose(interval.value, stats.improvement_matrix(s))
    np.testing.assert_allclose(interval.lo, lo, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(interval.hi, hi, rtol=1e-12, atol=1e-15)
    assert (interval.lo <= interval.value + 1e-12).all()
    assert (interval.value <= interval.hi + 1e-12).all()


def test_best_counts_share_ties_and_equal_the_loop() -> None:
    """Per task the lowest IQM (a miss as budget + 1) wins; a tie is shared; counts sum to
    the tasks, in every resample."""
    s = scores(7)
    s[1, 0] = s[0, 0]  # a tie on task 0
    interval = uncertainty.best_counts(s, 100, 300, 7, LEVEL)

    def count(r: np.ndarray) -> np.ndarray:
        iqm = stats.iqm(np.where(np.isinf(r), 101.0, r))  # (optimizers, tasks)
        out = np.zeros(r.shape[0])
        for t in range(r.shape[1]):
            best = np.flatnonzero(iqm[:, t] == iqm[:, t].min())
            out[best] += 1 / len(best)
        return out

    boot = looped(s, 300, 7, count)
    np.testing.assert_allclose(interval.value, count(s))
    assert interval.value.sum() == pytest.approx(s.shape[1])
    lo, hi = percentile_interval(boot)
    np.testing.assert_allclose(interval.lo, lo)
    np.testing.assert_allclose(interval.hi, hi)


def test_an_interval_reaching_infinity_stays_infinite() -> None:
    """Resamples whose statistic is +inf give an infinite end, never NaN (rliable's NaN)."""
    value = np.array([1.0])
    boot = np.array([[1.0]] * 90 + [[np.inf]] * 10)
    got = uncertainty.Interval.of(value, boot, LEVEL)
    assert got.hi[0] == np.inf and got.lo[0] == 1.0
