"""Which configurations win each task (scenario x loss), which losses fit each scenario's
line best, and how far the reporting seeds let us tell: winner sets, their half-split
agreement and the seeds' power (the tests: pipeline.study.inference).

Every function reads the reporting rows at the tuned lr (one per configuration and seed)
and the measure column it is given, lower is better, -1 for never.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.study import inference, stats
from pipeline.study.configuration import CONFIG, config_name

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd

TASK = ("scenario", "loss")
SPLITS = 200  # half splits of the reporting seeds drawn for the agreement (all if fewer)
SEEDS_SHOWN = (10, 20, 40, 60, 100)  # the power table's seed counts, beside the study's


def _tuned(report: pd.DataFrame) -> pd.DataFrame:
    at = report[report["lr_kind"] == "tuned"]
    return at.sort_values([*CONFIG, "seed"], kind="stable")


def tasks(
    report: pd.DataFrame, measure: str
) -> Iterator[tuple[tuple[str, str], list[str], np.ndarray]]:
    """Per task: (scenario, loss), its configurations' names and their steps (configs,
    seeds), +inf for never, seeds in one order for every configuration (paired)."""
    for key, part in _tuned(report).groupby(list(TASK), sort=False):
        names = [
            config_name(*k) for k in part[list(CONFIG)].drop_duplicates().itertuples(index=False)
        ]
        steps = stats.steps_or_inf(part[measure]).reshape(len(names), -1)
        yield (str(key[0]), str(key[1])), names, steps


def sets(report: pd.DataFrame, measure: str, budget: int) -> pd.DataFrame:
    """One row per configuration: its task, whether it is the task's best (lowest IQM,
    a miss counted as budget + 1), in its winner set, its Holm-adjusted p-value against
    the best, and the estimated effect P(D + D' > 0) of it against the best."""
    import pandas as pd

    rows = []
    for (scenario, loss), names, steps in tasks(report, measure):
        members, adjusted = inference.winner_set(steps, budget)
        v = inference.counted(steps, budget)
        best = inference.best_index(v)
        for i, name in enumerate(names):
            rows.append(
                {
                    "config": name,
                    "scenario": scenario,
                    "loss": loss,
                    "best": i == best,
                    "in_set": bool(members[i]),
                    "p_holm": float(adjusted[i]),
                    "effect": 0.5 if i == best else inference.effect(v[best], v[i]),
                }
            )
    return pd.DataFrame(rows)


def agreement(report: pd.DataFrame, measure: str, budget: int, seed: int) -> float:
    """The half-split agreement: over SPLITS splits of the reporting seeds into halves,
    the share of (split, task) pairs whose winner set on all seeds holds both halves'
    best configurations."""
    found = [steps for _, _, steps in tasks(report, measure)]
    splits = inference.half_splits(found[0].shape[1], SPLITS, seed)
    return inference.half_split_agreement(found, budget, splits)


def power(seeds: int, rivals: int) -> pd.DataFrame:
    """Per seed count (SEEDS_SHOWN and the study's), the smallest effect P(D + D' > 0) the
    signed-rank test against the first of `rivals` Holm comparisons detects with 80%
    power; above 1: none."""
    import pandas as pd

    counts = sorted({*SEEDS_SHOWN, seeds})
    return pd.DataFrame(
        {
            "seeds": counts,
            "detectable_effect": [inference.detectable(n, rivals) for n in counts],
            "this_study": [n == seeds for n in counts],
        }
    )


def fits(
    report: pd.DataFrame, measure: str, budget: int, winners: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per scenario and loss: the fit of the task's best configuration (config, optimizer,
    clip), as medians over the reporting seeds: the minimisers' distance to the generating
    line, its trained (w, b)'s (`trained_error`) and its final distance to the loss's
    minimisers (`median_target_error`); and
    whether the loss is in its scenario's set of best-fitting losses: the line error of
    each loss's best configuration (0 within the scenario's tol: rounding is no fit),
    paired by seed, tested as the winner sets are."""
    import pandas as pd

    at = _tuned(report)
    found = sets(report, measure, budget) if winners is None else winners
    best = found[found["best"]].drop_duplicates(list(TASK))  # tied bests: the first's fit
    rows = at.assign(config=[config_name(*k) for k in at[list(CONFIG)].itertuples(index=False)])
    rows = rows.merge(best[["config"]], on="config")
    out = []
    for scenario, part in rows.groupby("scenario", sort=False):
        part = part.sort_values(["loss", "seed"], kind="stable")
        losses = list(dict.fromkeys(part["loss"]))
        error = part["true_error"].to_numpy(np.float64).reshape(len(losses), -1)
        error = np.where(np.isfinite(error), error, np.inf)  # diverged: after every fit
        tol = part["tol"].to_numpy(np.float64).reshape(len(losses), -1)
        error = np.where(error <= tol, 0.0, error)  # within the target's radius: a fit alike
        finite = error[np.isfinite(error)]
        cap = int(np.ceil(finite.max())) + 1 if finite.size else 1
        members, adjusted = inference.winner_set(error, cap)
        for i, loss in enumerate(losses):
            one = part[part["loss"] == loss]
            out.append(
                {
                    "scenario": scenario,
                    "loss": loss,
                    "config": one["config"].iloc[0],
                    "optimizer": one["optimizer"].iloc[0],
                    "clip": one["clip"].iloc[0],
                    "minimiser_error": float(one["minimiser_error"].median()),
                    "trained_error": float(one["true_error"].median()),
                    "median_target_error": float(one["target_error"].median()),
                    "best_fit": bool(members[i]),
                    "fit_p_holm": float(adjusted[i]),
                }
            )
    return pd.DataFrame(out)
