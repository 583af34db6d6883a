"""The comparison's protocol: tuning picks the lr of the lowest median steps-to-target on
hand-made tables, and the summary's measures equal scipy's, numpy's and the bootstrap's
own on a real tiny study."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from pipeline.study import protocol, stats
from pipeline.study.configuration import CONFIG, config_name
from tests.helpers import study_fixtures

A = ("tutorial", "mse", "sgd", "none")
B = ("noisy", "huber", "adam", "norm")
NEVER = -1  # the engines' steps_sustained where a run never stayed within tol


def tune_frame(steps: dict[tuple[str, ...], dict[float, list[int]]]) -> pd.DataFrame:
    """Tune rows: per configuration, per lr, one row per seed with these sustained steps."""
    rows = [
        {**dict(zip(CONFIG, key, strict=True)), "lr": lr, "seed": seed, "steps_sustained": s}
        for key, per_lr in steps.items()
        for lr, values in per_lr.items()
        for seed, s in enumerate(values)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # no order to rely on


HAND = {
    A: {  # medians 55, 30, inf (3 of 5 never: the median is inf, not -1)
        0.01: [50, 55, 60, 45, 70],
        0.1: [10, 20, 30, NEVER, 40],
        1.0: [NEVER, NEVER, NEVER, 1, 2],
    },
    B: {  # medians 40, 40, 80: a tie at the best, the smaller lr wins
        0.001: [40, 40, 40, 41, 39],
        0.01: [38, 40, 42, 40, 40],
        0.1: [80, 80, 90, 70, NEVER],
    },
}


def test_tune_picks_the_lr_of_the_lowest_median() -> None:
    """A: 0.1 (median 30; lr 1 has medians inf, its -1 steps count as never, not as -1)."""
    tuned = protocol.tune(tune_frame(HAND)).set_index("config")

    row = tuned.loc[config_name(*A)]
    assert row["tuned_lr"] == 0.1
    assert row["tune_median"] == 30.0


def test_tune_breaks_a_tie_toward_the_smaller_lr() -> None:
    """B: lrs 0.001 and 0.01 share the best median 40: the smaller is tuned."""
    tuned = protocol.tune(tune_frame(HAND)).set_index("config")

    row = tuned.loc[config_name(*B)]
    assert row["tuned_lr"] == 0.001
    assert row["tune_median"] == 40.0


def test_tune_names_every_configuration_once_with_its_columns() -> None:
    """One row per configuration: config, the CONFIG columns, tuned_lr, tune_median, tunability."""
    tuned = protocol.tune(tune_frame(HAND))

    assert list(tuned.columns) == ["config", *CONFIG, "tuned_lr", "tune_median", "tunability"]
    assert sorted(tuned["config"]) == sorted([config_name(*A), config_name(*B)])
    for _, row in tuned.iterrows():
        assert row["config"] == config_name(*(row[c] for c in CONFIG))


def test_tunability_is_the_width_in_decades_within_2x_of_the_best() -> None:
    """Tunability: the decades of lrs whose median is within 2x of the best."""
    # A: best 30, 55 <= 60 in, inf out: 1 decade. B: best 40, 40 and 80 in: 2 decades
    tuned = protocol.tune(tune_frame(HAND)).set_index("config")

    assert tuned.loc[config_name(*A), "tunability"] == pytest.approx(1.0, abs=1e-12)
    assert tuned.loc[config_name(*B), "tunability"] == pytest.approx(2.0, abs=1e-12)


def test_tunability_stops_at_the_first_lr_outside_the_window() -> None:
    """The tunability window is contiguous: it ends at the first lr outside 2x."""
    # medians 10, 50, 12: 50 > 2 x 10 ends it, though 12 is within
    tuned = protocol.tune(tune_frame({A: {1e-3: [10] * 5, 1e-2: [50] * 5, 1e-1: [12] * 5}}))

    assert tuned["tuned_lr"].tolist() == [1e-3]
    assert tuned["tunability"].tolist() == [0.0]


def test_a_configuration_that_never_reaches_the_target_gets_the_grid_lr_nearest_default() -> None:
    """All never: the grid lr nearest the default (log10), median inf, tunability 0."""
    # rmsprop's default 1e-2: 3e-3 is 0.52 decades away, 1e-4 and 1e-1 farther
    key = ("noisy", "mse", "rmsprop", "none")
    never = {key: {1e-4: [NEVER] * 5, 3e-3: [NEVER] * 5, 1e-1: [NEVER] * 5}}

    row = protocol.tune(tune_frame(never)).iloc[0]

    assert row["tuned_lr"] == 3e-3
    assert row["tune_median"] == np.inf
    assert row["tunability"] == 0.0


# --- the summary, on a real tiny study ------------------------------------------------
@pytest.fixture(scope="module")
def summary(tiny_study: study_fixtures.Study) -> pd.DataFrame:
    b = tiny_study.p.analysis.bootstrap
    return protocol.summary(tiny_study.report, tiny_study.tuned, b.reps, b.seed).set_index("config")


def reporting_steps(tiny_study: study_fixtures.Study, kind: str) -> dict[str, np.ndarray]:
    """Each configuration's steps (never = +inf) over its reporting seeds, in seed order."""
    rows = tiny_study.report[tiny_study.report["lr_kind"] == kind].sort_values("seed")
    out = {}
    for key, part in rows.groupby(list(CONFIG)):
        steps = part["steps_sustained"].to_numpy(np.float64)
        out[config_name(*key)] = np.where(steps == NEVER, np.inf, steps)
    return out


def test_summary_has_one_row_per_configuration_joined_with_its_tuning(
    tiny_study: study_fixtures.Study, summary: pd.DataFrame
) -> None:
    """Every configuration once, with its tuned lr and the number of reporting seeds."""
    assert sorted(summary.index) == sorted(tiny_study.tuned["config"])
    tuned = tiny_study.tuned.set_index("config")
    for name, row in summary.iterrows():
        assert row["tuned_lr"] == tuned.loc[name, "tuned_lr"]
    assert (summary["reporting_seeds"] == len(tiny_study.p.study.seeds.report)).all()


def test_summary_iqm_is_scipy_trim_mean_and_median_numpy_median(
    tiny_study: study_fixtures.Study, summary: pd.DataFrame
) -> None:
    """iqm is scipy's trim_mean(0.25), median numpy's, success the finite fraction."""
    for name, steps in reporting_steps(tiny_study, "tuned").items():
        row = summary.loc[name]

        assert row["iqm_steps"] == pytest.approx(scipy.stats.trim_mean(steps, 0.25), rel=1e-12)
        assert row["median_steps"] == np.median(steps)
        assert row["success_rate"] == np.isfinite(steps).mean()
    assert summary["success_rate"].max() > 0  # the comparison is not all inf


def test_summary_intervals_are_the_bootstrap_of_the_same_steps(
    tiny_study: study_fixtures.Study, summary: pd.DataFrame
) -> None:
    """The intervals are bootstrap_ci of each configuration's steps alone, and contain it."""
    b = tiny_study.p.analysis.bootstrap
    median = lambda v: np.median(v, axis=-1)  # noqa: E731  # the statistic, as summary's

    for name, steps in reporting_steps(tiny_study, "tuned").items():
        row = summary.loc[name]
        lo, hi = stats.bootstrap_ci(steps[None], stats.iqm, b.reps, protocol.LEVEL, b.seed)
        mlo, mhi = stats.bootstrap_ci(steps[None], median, b.reps, protocol.LEVEL, b.seed)

        assert (row["iqm_lo"], row["iqm_hi"]) == (lo[0], hi[0]), name
        assert (row["median_lo"], row["median_hi"]) == (mlo[0], mhi[0]), name
        assert row["iqm_lo"] <= row["iqm_steps"] <= row["iqm_hi"], name
        assert row["median_lo"] <= row["median_steps"] <= row["median_hi"], name


def test_summary_default_median_is_the_default_lr_rows_median(
    tiny_study: study_fixtures.Study, summary: pd.DataFrame
) -> None:
    """default_median_steps is the median of the default-lr rows' steps."""
    report = tiny_study.report[tiny_study.report["lr_kind"] == "default"]
    for name, steps in reporting_steps(tiny_study, "default").items():
        row = summary.loc[name]
        lrs = report.loc[
            [config_name(*k) == name for k in report[list(CONFIG)].itertuples(index=False)], "lr"
        ]

        assert row["default_median_steps"] == np.median(steps)
        assert set(lrs) == {row["default_lr"]}


def test_summary_error_and_divergence_are_the_tuned_rows(
    tiny_study: study_fixtures.Study, summary: pd.DataFrame
) -> None:
    """Errors and clip fraction are medians, diverged_rate a mean, of the tuned rows."""
    tuned = tiny_study.report[tiny_study.report["lr_kind"] == "tuned"]
    for key, rows in tuned.groupby(list(CONFIG)):
        row = summary.loc[config_name(*key)]

        assert row["median_error"] == np.median(rows["target_error"])
        assert row["median_true_error"] == np.median(rows["true_error"])
        assert row["clip_fraction"] == np.median(rows["clip_fraction"])
        assert row["diverged_rate"] == rows["diverged"].mean()


def test_summary_does_not_depend_on_the_row_order(tiny_study: study_fixtures.Study) -> None:
    """Shuffled report rows give the same summary (seeds are matched, not positions)."""
    b = tiny_study.p.analysis.bootstrap
    shuffled = tiny_study.report.sample(frac=1.0, random_state=1)

    a = (
        protocol.summary(tiny_study.report, tiny_study.tuned, b.reps, b.seed)
        .set_index("config")
        .sort_index()
    )
    s = (
        protocol.summary(shuffled, tiny_study.tuned, b.reps, b.seed)
        .set_index("config")
        .sort_index()
    )

    pd.testing.assert_frame_equal(a, s, check_exact=True)


def test_summary_of_a_hand_table_with_missed_targets() -> None:
    """Misses count as inf: trimmed away (A: 2 of 10) or kept (B: 4 of 10, IQM inf)."""
    steps = {A: [5, 7, NEVER, 9, 11, 13, NEVER, 6, 8, 10], B: [NEVER] * 4 + [1, 2, 3, 4, 5, 6]}
    rows = [
        {**dict(zip(CONFIG, key, strict=True)), "seed": 100 + i, "lr": 0.1, "lr_kind": kind,
         "steps_sustained": s if kind == "tuned" else NEVER,
         "steps_first_touch": (s // 2 if s != NEVER else (3 if i % 2 else NEVER))
         if kind == "tuned" else NEVER,
         "touch_share": 1.0 if s != NEVER else 0.5, "excursion": 0.1 * i,
         "target_error": 0.5 * i, "true_error": float(i), "minimiser_error": 0.25,
         "diverged": int(s == NEVER), "clip_fraction": 0.0}
        for key, values in steps.items()
        for i, s in enumerate(values)
        for kind in ("tuned", "default")
    ]  # fmt: skip
    report = pd.DataFrame(rows).sample(frac=1.0, random_state=2)
    tuned = protocol.tune(tune_frame({A: {0.1: [1] * 5}, B: {0.1: [1] * 5}}))

    out = protocol.summary(report, tuned, 500, 0).set_index("config")

    a, b = out.loc[config_name(*A)], out.loc[config_name(*B)]
    inf = np.where(np.array(steps[A]) == NEVER, np.inf, steps[A])
    assert a["iqm_steps"] == pytest.approx(scipy.stats.trim_mean(inf, 0.25), rel=1e-12)
    assert a["iqm_steps"] == pytest.approx(np.mean([7, 8, 9, 10, 11, 13]), rel=1e-12)
    assert (b["iqm_steps"], b["iqm_hi"], b["median_steps"]) == (np.inf, np.inf, 5.5)
    assert (a["success_rate"], b["success_rate"]) == (0.8, 0.6)
    # the first touch: half the sustained step where it stayed, 3 or never where not
    assert a["first_touch_median"] == 4.5  # 2 3 3 4 4 | 5 5 6 never never
    assert (a["touched_rate"], b["touched_rate"]) == (0.8, 0.8)
    # tails: a run's own value, the ceil(q n)-th smallest (A's 9th of 10 is a miss)
    ranked = np.sort(inf)
    assert (a["p90_steps"], a["p99_steps"]) == (ranked[8], ranked[9]) == (np.inf, np.inf)
    hits = report[~report["seed"].isin([102, 106])]  # A without its misses
    hits = protocol.summary(hits, tuned, 500, 0).set_index("config")
    assert hits.loc[config_name(*A), "p90_steps"] == 13.0  # the 8th of 8: 5 6 7 ... 11 13
    assert (a["median_minimiser_error"], a["median_touch_share"]) == (0.25, 1.0)
    assert (a["diverged_rate"], b["diverged_rate"]) == (0.2, 0.4)
    assert (a["default_median_steps"], b["default_median_steps"]) == (np.inf, np.inf)
    assert a["median_error"] == 2.25  # median of 0, 0.5, ..., 4.5
    # the final error's tails, the ceil(q n)-th smallest of 0, 0.5, ..., 4.5: 9th and 10th
    errors = np.sort(0.5 * np.arange(10))
    assert (a["p90_error"], a["p99_error"]) == (errors[8], errors[9]) == (4.0, 4.5)
    blown = report.assign(target_error=report["target_error"].where(report["seed"] != 100))
    blown = protocol.summary(blown, tuned, 500, 0).set_index("config")  # A's seed 100: NaN
    assert (blown.loc[config_name(*A), "p90_error"], blown.loc[config_name(*A), "p99_error"]) == (
        4.5, np.inf,
    )  # fmt: skip
