"""The study statistics against direct computation: scipy, slow loops, hand examples."""

import numpy as np
import numpy.typing as npt
import pytest
import scipy.stats

from pipeline.study import stats

INF = np.inf
Floats = npt.NDArray[np.float64]


def mean_over_runs(a: Floats) -> Floats:
    """The plain mean over runs, a second statistic for the bootstrap."""
    return np.asarray(a.mean(axis=-1))


def slow_percentile(boot: Floats, q: float) -> float:
    """np.percentile of bootstrap statistics, +inf standing in as a huge finite number: any
    interpolation towards it is astronomically large, so it maps back to +inf."""
    huge = 1e300
    p = float(np.percentile(np.where(np.isinf(boot), huge, boot), q))
    return INF if p > 1e200 else p


def slow_bootstrap(
    values: Floats, statistic: stats.Statistic, reps: int, level: float, seed: int, strata: Floats
) -> tuple[Floats, Floats]:
    """rliable's stratified bootstrap written as loops: the documented draws (per stratum,
    in sorted label order), then one resample and one statistic per rep and per row."""
    rng = np.random.default_rng(seed)
    draws = {}
    for label in np.unique(strata):
        cols = np.flatnonzero(strata == label)
        draws[label] = (cols, rng.integers(0, cols.size, size=(reps, cols.size)))
    lo, hi = np.empty(len(values)), np.empty(len(values))
    for c, row in enumerate(values):
        boot = np.empty(reps)
        for rep in range(reps):
            sample = np.empty(row.size)
            for cols, picks in draws.values():
                sample[cols] = row[cols[picks[rep]]]
            boot[rep] = statistic(sample)
        lo[c] = slow_percentile(boot, 100 * (1 - level) / 2)
        hi[c] = slow_percentile(boot, 100 * (1 + level) / 2)
    return lo, hi


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 40, 101])
def test_iqm_is_scipys_quarter_trimmed_mean(n: int) -> None:
    """iqm equals scipy.stats.trim_mean(x, 0.25) along either axis, n divisible by 4 or not."""
    x = np.random.default_rng(n).lognormal(5.0, 1.0, size=(3, n))

    np.testing.assert_allclose(stats.iqm(x), scipy.stats.trim_mean(x, 0.25, axis=1), rtol=1e-13)
    np.testing.assert_allclose(
        stats.iqm(x.T, axis=0), scipy.stats.trim_mean(x.T, 0.25, axis=0), rtol=1e-13
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 100, 1000], 4.5),  # n = 8: drop 2 each side
        ([90, 0, 10, 1000, 20, 30, 40, 50, 0, 1000], 40.0),  # n = 10: 2.5 -> 2 (3 gives 35)
        ([10, 30, 20], 20.0),  # n < 4: nothing dropped
        ([10, 20, 30, INF], 25.0),  # the one miss is trimmed
        ([10, 20, INF, INF], INF),  # 2 misses in 4: one survives the trim
        ([10, 20, INF], INF),  # n = 3 trims nothing, so the miss counts
    ],
)
def test_iqm_hand_examples_with_and_without_misses(values: list[float], expected: float) -> None:
    """iqm by hand: a +inf (never reached) makes it +inf only if the trim keeps it."""
    assert stats.iqm(values) == expected
    assert scipy.stats.trim_mean(values, 0.25) == expected


def test_nan_and_minus_inf_are_not_steps() -> None:
    """NaN or -inf in steps raise instead of sorting silently to one end."""
    for bad in (np.nan, -INF):
        with pytest.raises(ValueError, match="NaN"):
            stats.iqm([1.0, bad, 3.0, 4.0])


def test_engine_misses_become_inf() -> None:
    """steps_or_inf turns the engine's -1 (never reached) into +inf and keeps 0 and counts."""
    np.testing.assert_array_equal(stats.steps_or_inf([-1, 0, 7]), [INF, 0.0, 7.0])


@pytest.mark.parametrize("statistic", [stats.iqm, mean_over_runs])
def test_bootstrap_equals_a_slow_stratified_loop(statistic: stats.Statistic) -> None:
    """Vectorised CIs equal a per-rep, per-row loop over the same draws, strata unsorted."""
    rng = np.random.default_rng(3)
    values = rng.integers(20, 400, size=(6, 11)).astype(np.float64)
    strata = np.array([2, 0, 1, 0, 2, 2, 1, 0, 0, 1, 2])  # sizes 4, 3, 4, interleaved

    fast = stats.bootstrap_ci(values, statistic, reps=300, level=0.9, seed=5, strata=strata)
    slow = slow_bootstrap(values, statistic, reps=300, level=0.9, seed=5, strata=strata)

    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])


def test_bootstrap_with_misses_equals_the_slow_loop() -> None:
    """With +inf runs the intervals still equal the loop's; hi may be inf while lo is finite."""
    rng = np.random.default_rng(4)
    values = rng.integers(20, 400, size=(8, 10)).astype(np.float64)
    values[rng.random(values.shape) < 0.3] = INF
    values[0] = INF  # never reached: the interval is (inf, inf)
    values[1] = 50.0  # every run alike: the interval is one point
    one_stratum = np.zeros(10)

    lo, hi = stats.bootstrap_ci(values, stats.iqm, reps=400, seed=1)
    slow = slow_bootstrap(values, stats.iqm, reps=400, level=0.95, seed=1, strata=one_stratum)

    np.testing.assert_array_equal(lo, slow[0])
    np.testing.assert_array_equal(hi, slow[1])
    assert (lo[0], hi[0]) == (INF, INF) and (lo[1], hi[1]) == (50.0, 50.0)
    assert np.isinf(hi).sum() > np.isinf(lo).sum()  # some rows: finite lo, infinite hi


def test_bootstrap_ci_of_the_mean_covers_95_percent() -> None:
    """For 400 normal datasets (100 runs, true mean 3) the 95% CI of the mean covers 3 in
    0.92-0.98 of them: the binomial range (about ±2.5 sd) around the percentile bootstrap's
    own coverage here, about 0.946 (it is a z-interval with a biased sd: slightly short)."""
    values = np.random.default_rng(7).normal(3.0, 2.0, size=(400, 100))

    lo, hi = stats.bootstrap_ci(values, mean_over_runs, reps=2000, seed=11)

    coverage = np.mean((lo <= 3.0) & (hi >= 3.0))
    assert 0.92 <= coverage <= 0.98


def test_a_rows_interval_ignores_other_rows_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared draws: each row's CI is the same alone, in a batch, or split in chunks of 2."""
    values = np.random.default_rng(8).integers(1, 99, size=(5, 8)).astype(np.float64)
    batch = stats.bootstrap_ci(values, reps=100, seed=2)

    monkeypatch.setattr(stats, "CHUNK_ELEMENTS", 2 * 100 * 8)
    chunked = stats.bootstrap_ci(values, reps=100, seed=2)
    alone = [stats.bootstrap_ci(values[i : i + 1], reps=100, seed=2) for i in range(5)]

    np.testing.assert_array_equal(np.stack(batch), np.stack(chunked))
    np.testing.assert_array_equal(np.stack(batch), np.hstack([np.stack(a) for a in alone]))


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    """The same seed gives identical intervals; another seed gives different ones."""
    values = np.random.default_rng(9).normal(100.0, 10.0, size=(4, 12))

    first, again = stats.bootstrap_ci(values, seed=3), stats.bootstrap_ci(values, seed=3)
    other = stats.bootstrap_ci(values, seed=4)

    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(np.stack(first), np.stack(other))


def test_strata_keep_each_strata_size() -> None:
    """A stratified resample draws each column from its own stratum only."""
    strata = np.array([0, 0, 1, 1, 1, 2])
    indices = stats.resample_indices(6, 500, 0, strata)

    assert (strata[indices] == strata).all()
    assert set(np.unique(indices[:, 5])) == {5}  # a stratum of one run never changes


def pairwise(x: Floats, y: Floats) -> Floats:
    """P(X < Y) + P(X = Y) / 2 by counting all n x m pairs."""
    less = (x[..., :, None] < y[..., None, :]).sum(axis=(-1, -2))
    ties = (x[..., :, None] == y[..., None, :]).sum(axis=(-1, -2))
    return (less + 0.5 * ties) / (x.shape[-1] * y.shape[-1])


def test_probability_of_improvement_counts_every_pair() -> None:
    """The rank formula equals the O(n m) pair count, with many ties and +inf runs."""
    rng = np.random.default_rng(10)
    x = rng.integers(0, 6, size=(5, 1, 7)).astype(np.float64)
    y = rng.integers(0, 6, size=(1, 5, 9)).astype(np.float64)
    x[rng.random(x.shape) < 0.2] = INF
    y[rng.random(y.shape) < 0.2] = INF
    x_b, y_b = np.broadcast_to(x, (5, 5, 7)), np.broadcast_to(y, (5, 5, 9))

    p = stats.probability_of_improvement(x, y)

    np.testing.assert_array_equal(p, pairwise(x_b, y_b))
    np.testing.assert_allclose(p + stats.probability_of_improvement(y, x), 1.0, rtol=1e-15)


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ([INF], [INF], 0.5),  # two misses tie
        ([5.0], [INF], 1.0),  # reaching beats missing
        ([1.0, 2.0], [2.0, 3.0], 0.875),  # 3 wins, 1 tie of 4 pairs
        ([3.0, 3.0], [3.0, 3.0], 0.5),
    ],
)
def test_probability_of_improvement_by_hand(
    x: list[float], y: list[float], expected: float
) -> None:
    """Lower is better: fewer steps wins, ties and two +inf count one half."""
    assert stats.probability_of_improvement(x, y) == expected


def test_improvement_matrix_averages_tasks() -> None:
    """Entry i, j is the per-task pair count averaged over tasks; diagonal 0.5; P + P.T = 1."""
    scores = np.random.default_rng(12).integers(0, 8, size=(4, 3, 6)).astype(np.float64)
    scores[0, 1] = INF

    matrix = stats.improvement_matrix(scores)

    expected = [[pairwise(a, b).mean() for b in scores] for a in scores]
    np.testing.assert_allclose(matrix, expected, rtol=1e-15)
    np.testing.assert_array_equal(np.diag(matrix), 0.5)
    np.testing.assert_allclose(matrix + matrix.T, 1.0, rtol=1e-15)


# 3 submissions x 4 workloads; workload 3 nobody solved, so it counts against everyone.
SCORES = np.array(
    [
        [100.0, 300.0, 50.0, INF],  # ratios 1, 3, 1, inf
        [200.0, 100.0, INF, INF],  # ratios 2, 1, inf, inf
        [400.0, 150.0, 75.0, INF],  # ratios 4, 1.5, 1.5, inf
    ]
)


def test_performance_profile_by_hand() -> None:
    """rho(tau) is the fraction of all 4 workloads within tau of the fastest."""
    taus = [1.0, 1.5, 2.0, 3.0, 4.0]

    profile = stats.performance_profile(SCORES, taus)

    expected = np.array([[2, 2, 2, 3, 3], [1, 1, 2, 2, 2], [0, 2, 2, 2, 3]]) / 4
    np.testing.assert_array_equal(profile, expected)


def test_profile_score_is_the_exact_area() -> None:
    """Score = area under rho over [1, 4] / 3: by hand (7, 5, 5) / 12, and within 1e-4 of
    the trapezoid rule on a grid of 30001 taus (AlgoPerf's way)."""
    taus = np.linspace(1.0, 4.0, 30001)

    score = stats.profile_score(SCORES)

    np.testing.assert_allclose(score, np.array([7, 5, 5]) / 12, rtol=1e-15)
    trapezoid = np.trapezoid(stats.performance_profile(SCORES, taus), taus, axis=1) / 3
    np.testing.assert_allclose(score, trapezoid, atol=1e-4)


def test_ratios_at_zero_steps() -> None:
    """Reaching the target at step 0 is a ratio of 1 when shared, inf for the slower."""
    ratios = stats.performance_ratios([[0.0, 5.0], [0.0, 0.0]])

    np.testing.assert_array_equal(ratios, [[1.0, INF], [1.0, 1.0]])


LRS = 10.0 ** np.linspace(-4.0, 0.0, 9)  # 2 points a decade
MEDIANS = np.array(
    [
        [900, 400, 200, 120, 100, 150, 250, INF, INF],  # V: 200..150 within 2x, 1.5 decades
        [150, 900, 200, 120, 100, 150, 250, INF, INF],  # lr 1e-4 within 2x but cut off
        [100, 100, 100, 100, 100, 100, 100, 100, 100],  # flat: the whole grid, 4 decades
        [INF, INF, INF, INF, INF, INF, INF, INF, INF],  # never reached
        [INF, 500, 700, 100, 300, 100, INF, INF, INF],  # tie: the smaller lr; alone in 2x
    ]
)


def test_tunability_by_hand() -> None:
    """Decades of the contiguous lr window within 2x of the best; 0 when nothing reached."""
    np.testing.assert_allclose(stats.tunability(LRS, MEDIANS), [1.5, 1.5, 4.0, 0.0, 0.0])
    assert stats.tunability(LRS, MEDIANS[4], factor=3.0) == pytest.approx(1.0)  # 700 > 300


def test_tuned_by_hand() -> None:
    """The best lr's index, ties to the smaller lr; all misses: smallest lr, or the default's."""
    np.testing.assert_array_equal(stats.tuned(LRS, MEDIANS), [4, 4, 0, 0, 3])
    with_default = stats.tuned(np.broadcast_to(LRS, MEDIANS.shape), MEDIANS, default_lr=1e-3)
    np.testing.assert_array_equal(with_default, [4, 4, 0, 2, 3])


def test_lr_grid_must_increase() -> None:
    """An unsorted lr grid would break the tie rule and the window, so it is refused."""
    with pytest.raises(ValueError, match="increasing"):
        stats.tuned(LRS[::-1], MEDIANS)
