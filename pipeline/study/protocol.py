"""The comparison's protocol, on the study's per-cell table (one row per cell).

The measure is the sustained time to target (MEASURE): the first step from which a cell
stays within tol of its loss's set of minimisers until its last step, +inf if it never
does (pipeline.engine.target: each engine keeps the last step spent outside). The first
touch (FIRST_TOUCH: the first step within tol, which only an oracle stopping right there
would get) is reported beside it, never ranked on.

1. Tune: per configuration (scenario, loss, optimizer, clip), the lr with the lowest
   median sustained steps over the tuning seeds (ties: the smaller lr). DeepOBS tunes on
   a log grid and picks by final performance; "Descending through a Crowded Valley"
   tunes on one seed; here every tuning seed counts and the measure is loss-agnostic.
2. Report: the tuned lr on fresh reporting seeds: interquartile mean and median of the
   sustained steps with 95% bootstrap confidence intervals (rliable), their tails (p90,
   p99), the success rate (sustained within the budget), the first touch's median, the
   share of steps within tol after the first touch and the largest excursion after it,
   final distances to the minimisers and to the line, divergence; tunability (the width
   in decades of the lr window within 2x of the best tuning median); one shot at the
   library's default lr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.optimizers import OPTIMIZERS
from pipeline.study import stats
from pipeline.study.configuration import CONFIG, config_name

if TYPE_CHECKING:
    import pandas as pd

MEASURE = "steps_sustained"  # what tuning, reporting and the winner sets rank on
FIRST_TOUCH = "steps_first_touch"
TUNABILITY_FACTOR = 2.0  # the lr window within 2x of the best median
LEVEL = 0.95  # confidence of the intervals


def _configs(frame: pd.DataFrame) -> list[str]:
    return [config_name(*row) for row in frame[list(CONFIG)].itertuples(index=False)]


def tune(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of the tune rows: its name, CONFIG, `tuned_lr`, the
    tuning median at it, and `tunability` (decades)."""
    import pandas as pd

    medians = (
        cells.assign(steps=stats.steps_or_inf(cells[MEASURE]))
        .groupby([*CONFIG, "lr"], sort=True)["steps"]
        .median()
    )
    rows = []
    for key, part in medians.groupby(level=list(CONFIG), sort=False):
        lrs = part.index.get_level_values("lr").to_numpy()
        m = part.to_numpy()
        named = dict(zip(CONFIG, key, strict=True))
        best = int(stats.tuned(lrs, m, OPTIMIZERS[named["optimizer"]].default_lr))
        rows.append(
            {
                "config": config_name(*key),
                **named,
                "tuned_lr": float(lrs[best]),
                "tune_median": float(m[best]),
                "tunability": float(stats.tunability(lrs, m, TUNABILITY_FACTOR)),
            }
        )
    return pd.DataFrame(rows)


MEDIANS = {  # regression: the median of each column, under its name
    "touch_share": "median_touch_share",
    "excursion": "median_excursion",
    "target_error": "median_error",
    "true_error": "median_true_error",
    "minimiser_error": "median_minimiser_error",
}
TAILS = (0.9, 0.99)  # tails: p90, p99 (a run's own value, no blend)
TAIL_COLUMNS = {"target_error": "error"}  # regression: p90_error, p99_error, the final error's


def summary(
    report: pd.DataFrame,
    tuned: pd.DataFrame,
    reps: int,
    seed: int,
    medians: dict[str, str] = MEDIANS,
    tails: dict[str, str] = TAIL_COLUMNS,
) -> pd.DataFrame:
    """One row per configuration: `tuned` (from `tune`) joined with the measures of its
    reporting seeds at the tuned lr (the median of each column of `medians`, under its
    name; the p90 and p99 of each column of `tails`, as p90_<name>: a value that is not a
    number, from a run that blew up, counts as +inf), and the median steps at the
    library's default lr."""
    at = report[report["lr_kind"] == "tuned"].sort_values([*CONFIG, "seed"], kind="stable")
    shot = report[report["lr_kind"] == "default"]
    names = np.array(_configs(at))
    order = list(dict.fromkeys(names))
    runs = len(at) // len(order)
    steps = stats.steps_or_inf(at[MEASURE]).reshape(len(order), runs)
    touch = stats.steps_or_inf(at[FIRST_TOUCH]).reshape(len(order), runs)
    lo_iqm, hi_iqm = stats.bootstrap_ci(steps, stats.iqm, reps, LEVEL, seed)
    lo_med, hi_med = stats.bootstrap_ci(steps, lambda v: np.median(v, axis=-1), reps, LEVEL, seed)
    by = {
        "config": order,
        "iqm_steps": stats.iqm(steps),
        "iqm_lo": lo_iqm,
        "iqm_hi": hi_iqm,
        "median_steps": np.median(steps, axis=-1),
        "median_lo": lo_med,
        "median_hi": hi_med,
        **{
            f"p{round(100 * q)}_steps": np.quantile(steps, q, axis=-1, method="inverted_cdf")
            for q in TAILS
        },
        "success_rate": np.isfinite(steps).mean(axis=-1),  # stayed within tol from some step
        "first_touch_median": np.median(touch, axis=-1),
        "touched_rate": np.isfinite(touch).mean(axis=-1),
    }
    import pandas as pd

    measures = pd.DataFrame(by)
    grouped = at.assign(config=names).groupby("config", sort=False)
    for column, name in medians.items():
        measures[name] = grouped[column].median().reindex(order).to_numpy()
    for column, name in tails.items():
        values = at[column].to_numpy(np.float64).reshape(len(order), runs)
        values = np.where(np.isnan(values), np.inf, values)
        for q in TAILS:
            tail = np.quantile(values, q, axis=-1, method="inverted_cdf")
            measures[f"p{round(100 * q)}_{name}"] = tail
    measures["diverged_rate"] = grouped["diverged"].mean().reindex(order).to_numpy()
    measures["clip_fraction"] = grouped["clip_fraction"].median().reindex(order).to_numpy()
    shot_steps = stats.steps_or_inf(shot[MEASURE])
    default = shot.assign(config=_configs(shot), steps=shot_steps).groupby("config")
    measures["default_lr"] = default["lr"].first().reindex(order).to_numpy()
    measures["default_median_steps"] = default["steps"].median().reindex(order).to_numpy()
    measures["reporting_seeds"] = runs
    return tuned.merge(measures, on="config", how="right", validate="one_to_one")
