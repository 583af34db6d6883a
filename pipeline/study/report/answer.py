"""The report's first sections: the answer per scenario and loss (pipeline.study.answer),
the winners' paths, and how far the seeds let us tell (winner sets' power, half-split
agreement)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline import figures as toolkit
from pipeline import params
from pipeline.study.inference import ALPHA, POWER
from pipeline.study.protocol import LEVEL
from pipeline.study.report import figures
from pipeline.study.report.markup import details, number, percent, section, table

if TYPE_CHECKING:
    import pandas as pd


def _ordered(frame: pd.DataFrame, order: dict[str, list[str]]) -> pd.DataFrame:
    rank = {k: {v: i for i, v in enumerate(order[k])} for k in ("scenario", "loss")}
    return frame.sort_values(
        ["scenario", "loss"], key=lambda column: column.map(rank[column.name]), kind="stable"
    )


def answer(
    found: pd.DataFrame, agreement: float, cells: pd.DataFrame, traces: pd.DataFrame,
    p: params.StudyRecord, order: dict[str, list[str]],
) -> str:  # fmt: skip
    """The answer table, and the paths of each task's best configuration(s)."""
    import pandas as pd

    found = _ordered(found, order)
    seeds = len(p.study.seeds.report)
    frame = pd.DataFrame(
        {
            "scenario": found["scenario"],
            "loss": found["loss"],
            "best (optimizer+clip)": found["best"],
            "tuned lr": found["tuned_lr"],
            f"IQM sustained steps [{LEVEL:.0%} CI]": [
                f"{number(r.iqm_steps)} [{number(r.iqm_lo)}, {number(r.iqm_hi)}]"
                for r in found.itertuples()
            ],
            "success": [percent(v) for v in found["success_rate"]],
            "first touch (median)": [number(v) for v in found["first_touch_median"]],
            "winner set": [f"{r.set_size} of {r.rivals}" for r in found.itertuples()],
            "trained to line": found["trained_error"],
            "minimisers to line": found["minimiser_error"],
            "loss fits best": ["yes" if v else "no" for v in found["best_fit"]],
        }
    )
    text = (
        "Which optimizer and clipping, for which data and loss, and why. Per scenario and "
        "loss (a task), the configuration whose runs <b>stay</b> within tol of the loss's "
        "minimisers soonest: the interquartile mean (IQM) of the sustained steps over "
        f"{seeds} reporting seeds at its tuned lr, with its {LEVEL:.0%} bootstrap interval. "
        "The <b>winner set</b> holds every configuration of the task not significantly "
        "worse than the best (one-sided Wilcoxon signed-rank test paired by seed, a miss "
        f"counted after every finite value, Holm's correction over the rivals, {ALPHA:.0%}): "
        "a set of several is a tie among them, never broken by name (tied bests are all "
        f"named). Splitting the reporting seeds in two halves, {percent(agreement)} of the "
        "winner sets hold both halves' best configurations (the half-split agreement). "
        "<b>Fit</b>: the median distance to the generating line of the best's trained "
        "(w, b) and of the loss's own minimisers, and whether the loss is among the "
        "scenario's best-fitting losses (the line errors of each loss's best, tested as the "
        "winner sets are). The first touch, the first step within tol, is shown beside: a "
        "run that touches and leaves again is not done."
    )
    members = details(
        "Each task's winner set",
        table(found[["scenario", "loss", "winner_set"]].rename(columns={"winner_set": "members"})),
    )
    tol = cells.groupby("scenario")["tol"].first().to_dict()
    best = _paths(found)
    figure = toolkit.svg("winners", lambda: figures.winners(best, traces, tol, p.study.steps))
    return section("answer", "The answer", text, table(frame), members,
                   figure if len(traces) else "")  # fmt: skip


def _paths(found: pd.DataFrame) -> pd.DataFrame:
    """The (scenario, loss, optimizer, clip) rows of each task's best configuration(s)."""
    import pandas as pd

    rows = [
        {"scenario": r.scenario, "loss": r.loss, **dict(zip(("optimizer", "clip"),
                                                              one.split("+"), strict=True))}
        for r in found.itertuples()
        for one in r.best.split(" = ")
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["scenario", "loss", "optimizer", "clip"])


def seeds(power: pd.DataFrame, agreement: float, p: params.StudyRecord) -> str:
    """Why these seeds: the effect the signed-rank test detects with POWER power."""
    s = p.study.seeds
    shown = power.assign(
        detectable_effect=[number(v) if v <= 1 else "none" for v in power["detectable_effect"]],
        this_study=["yes" if v else "" for v in power["this_study"]],
    )
    text = (
        f"{len(s.tune)} tuning seeds pick each configuration's lr; {len(s.report)} fresh "
        "reporting seeds measure it. The reporting seeds' number comes from a power "
        "analysis of the winner-set test (Noether's formula for the signed-rank test, at "
        f"{ALPHA:.0%} after Holm's correction over a task's rivals, {POWER:.0%} power): the "
        "table gives, per number of seeds, the smallest effect P(D + D&prime; &gt; 0) the test "
        "detects, where D is a rival's steps minus the best's on one seed (0.5: no "
        f"difference). Measured on this study: a half-split agreement of {percent(agreement)} "
        "(the target: 90%)."
    )
    return section("seeds", "Seeds and power", text, table(shown))
