"""What the study found, as tables: every number the report shows comes from here.

Each function takes the study's per-cell table (pipeline.study.chunks' columns) and returns one
table, a pure function of it (no file, no plot):
- summary: one row per configuration (pipeline.study.protocol's measures);
- stability: per gradient-descent configuration, the largest lr that converged on the
  fine grid around the analytic edge, beside the edge, and what happened past it;
- winners: per scenario and loss (a task), its winner set: every configuration not
  significantly worse than the best (pipeline.study.winners); answer: the reconciled
  answer per task (pipeline.study.answer); power: the seeds' power;
- robustness: per scenario and loss, how far the loss's own minimisers and the task's
  best configuration land from the line the data were drawn from, and which losses fit
  it best;
- improvement: per clipping mode, each optimizer's probability of needing fewer steps
  than each other (rliable), averaged over scenarios x losses, with intervals;
- profiles: per clipping mode, each optimizer's performance profile over scenarios x
  losses (AlgoPerf's rho(tau), tau in [1, 4]) and its integrated score, with its interval
  and the probability that it is the top one; wins: each optimizer's tasks won;
- twins: the headline grid's cells through both engines, their finals side by side.
tables() computes all of them (the classification's table is classes(), of its own cells).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.study import answer, clipping, protocol, stats, uncertainty, winners
from pipeline.study.configuration import CONFIG, config_name
from pipeline.study.protocol import LEVEL, MEASURE

if TYPE_CHECKING:
    import pandas as pd

NEVER = 2.0  # a miss (+inf steps) counts, and is drawn, as this multiple of the step budget
TAUS = np.round(np.arange(1.0, 4.0001, 0.05), 2)  # the profile's tau grid, to AlgoPerf's 4
PROFILE_AT = (1.0, 1.5, 2.0, 3.0, 4.0)  # the taus profiles.csv keeps
FINALS = ("final_loss", "final_weight", "final_bias", "max_grad_norm", "clip_fraction")
EXACT = ("final_loss", "final_weight", "final_bias", "clip_fraction")  # twins: alike


def summary(cells: pd.DataFrame, tuned: pd.DataFrame, reps: int, seed: int) -> pd.DataFrame:
    """One row per configuration: its tuned lr (the study's tuned table), measured on the
    report part."""
    return protocol.summary(cells[cells["part"] == "report"], tuned, reps, seed)


BLOWN = 1e6  # past the edge, a run this far out (in units of the minimiser's size) blew up
CLASS_MEDIANS = {"accuracy": "median_accuracy", "angle_deg": "median_angle_deg"}


def classes(rows: pd.DataFrame, tuned: pd.DataFrame, reps: int, seed: int) -> pd.DataFrame:
    """One row per classification configuration: the protocol's measures (target: every
    training point right), the median accuracy and boundary angle to y = 2x."""
    return protocol.summary(rows[rows["part"] == "report"], tuned, reps, seed, CLASS_MEDIANS, {})


def stability(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of the edge part: max_stable_lr (the largest grid lr up
    to which every lr converged to within tol of the minimiser), theory_lr, their ratio,
    grid_step (relative), agrees (within one grid step), and what the grid lrs past the
    edge did: converged, diverged (non-finite, or farther than BLOWN times the minimiser's
    size from it) or stayed bounded (neither: an oscillation that neither grows nor dies)."""
    import pandas as pd

    edge = cells[cells["part"] == "edge"].sort_values([*CONFIG, "lr"], kind="stable")
    rows = []
    for key, part in edge.groupby(list(CONFIG), sort=False):
        lr, theory = part["lr"].to_numpy(), float(part["theory_lr"].iloc[0])
        converged = part[MEASURE].to_numpy() >= 0
        scale = np.maximum(1.0, np.hypot(part["target_weight"], part["target_bias"]))
        blown = (part["diverged"].to_numpy() == 1) | (
            part["target_error"].to_numpy() > BLOWN * scale.to_numpy()
        )
        first_bad = int(np.argmin(converged)) if not converged.all() else len(lr)
        stable = float(lr[first_bad - 1]) if first_bad > 0 else float("nan")
        past = lr > theory * (1 + 1e-9)  # the grid is symmetric about the edge: never empty
        step = float(np.median(np.diff(lr) / theory))
        rows.append(
            {
                "config": config_name(*key),
                **dict(zip(CONFIG, key, strict=True)),
                "max_stable_lr": stable,
                "theory_lr": theory,
                "ratio": stable / theory,
                "grid_step": step,
                "agrees": bool(abs(stable - theory) <= (1 + 1e-6) * step * theory),
                "past_converged": float(converged[past].mean()),
                "past_diverged": float(blown[past].mean()),
                "past_bounded": float((~converged & ~blown)[past].mean()),
            }
        )
    return pd.DataFrame(rows)


def _scores(report: pd.DataFrame, clip: str, median: bool) -> tuple[list[str], np.ndarray]:
    """optimizers and (optimizers, workloads[, runs]) steps at each tuned lr for `clip`;
    workloads = scenario x loss; median over runs when `median`."""
    part = report[(report["clip"] == clip) & (report["lr_kind"] == "tuned")]
    part = part.sort_values(["optimizer", "scenario", "loss", "seed"], kind="stable")
    optimizers = list(dict.fromkeys(part["optimizer"]))
    steps = stats.steps_or_inf(part[MEASURE]).reshape(len(optimizers), -1, part["seed"].nunique())
    return optimizers, (np.median(steps, axis=-1) if median else steps)


def improvement(cells: pd.DataFrame, reps: int, seed: int) -> pd.DataFrame:
    """Long format: clip, optimizer, versus, probability (optimizer needs fewer steps) and
    its interval (seeds resampled within each task: pipeline.study.uncertainty)."""
    import pandas as pd

    report = cells[cells["part"] == "report"]
    rows = []
    for clip in dict.fromkeys(report["clip"]):
        names, steps = _scores(report, clip, median=False)
        p = uncertainty.improvement(steps, reps, seed, LEVEL)
        rows += [
            {
                "clip": clip,
                "optimizer": a,
                "versus": b,
                "probability": float(p.value[i, j]),
                "lo": float(p.lo[i, j]),
                "hi": float(p.hi[i, j]),
            }
            for i, a in enumerate(names)
            for j, b in enumerate(names)
        ]
    return pd.DataFrame(rows)


def profiles(cells: pd.DataFrame, reps: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores: clip, optimizer, score, its interval, p_top (the share of resamples in
    which it scores highest), rho at PROFILE_AT; curves: clip, optimizer, tau, rho)."""
    import pandas as pd

    report = cells[cells["part"] == "report"]
    scores, curves = [], []
    for clip in dict.fromkeys(report["clip"]):
        names, steps = _scores(report, clip, median=False)
        medians = np.median(steps, axis=-1)
        rho = stats.performance_profile(medians, TAUS)
        score, top = uncertainty.profile_scores(steps, reps, seed, LEVEL)
        for i, name in enumerate(names):
            at = {f"rho_{t:g}": float(rho[i, np.flatnonzero(t == TAUS)[0]]) for t in PROFILE_AT}
            scores.append(
                {
                    "clip": clip,
                    "optimizer": name,
                    "score": float(score.value[i]),
                    "score_lo": float(score.lo[i]),
                    "score_hi": float(score.hi[i]),
                    "p_top": float(top[i]),
                    **at,
                }
            )
            curves += [
                {"clip": clip, "optimizer": name, "tau": float(t), "rho": float(r)}
                for t, r in zip(TAUS, rho[i], strict=True)
            ]
    return pd.DataFrame(scores), pd.DataFrame(curves)


def wins(cells: pd.DataFrame, steps: int, reps: int, seed: int) -> pd.DataFrame:
    """Per clip and optimizer: the tasks (scenario x loss) on which it has the lowest IQM
    (ties shared), with its interval."""
    import pandas as pd

    report = cells[cells["part"] == "report"]
    rows = []
    for clip in dict.fromkeys(report["clip"]):
        names, runs = _scores(report, clip, median=False)
        counts = uncertainty.best_counts(runs, steps, reps, seed, LEVEL)
        rows += [
            {
                "clip": clip,
                "optimizer": name,
                "wins": float(counts.value[i]),
                "lo": float(counts.lo[i]),
                "hi": float(counts.hi[i]),
            }
            for i, name in enumerate(names)
        ]
    return pd.DataFrame(rows)


def twins(cells: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Per headline cell: each final of the reference engine (reference: reports/cells.csv)
    and of the batched engine, and the largest relative difference over EXACT (the
    engines compute them alike; max_grad_norm is not among them: the reference takes a
    float64 hypot of the float32 gradients, the batched engine torch's float32 norm)."""
    import pandas as pd

    twin = cells[cells["part"] == "twin"].set_index("name")
    ref = reference.set_index("cell")
    rows = []
    for name in ref.index:
        row: dict[str, object] = {"cell": name}
        worst = 0.0
        for measure in FINALS:
            a, b = float(ref.loc[name, measure]), float(twin.loc[name, measure])
            row[f"reference_{measure}"], row[f"batched_{measure}"] = a, b
            if measure in EXACT and a != b:
                worst = max(worst, abs(a - b) / max(abs(a), 1e-300))
        row["largest_rel_diff"] = worst
        rows.append(row)
    return pd.DataFrame(rows)


def sensitivity(cells: pd.DataFrame, steps: int) -> pd.DataFrame:
    """Per configuration and lr (index: CONFIG, lr): the 25, 50 and 75% quantiles
    (columns) of steps to target over the tuning seeds; a miss counts as NEVER x the step
    budget `steps`, a start within tol as 1 step (the report's log axis)."""
    tune = cells[cells["part"] == "tune"]
    counted = np.clip(stats.steps_or_inf(tune[MEASURE]), 1.0, NEVER * steps)
    by = tune.assign(counted=counted).groupby([*CONFIG, "lr"], sort=True)["counted"]
    return by.quantile([0.25, 0.5, 0.75]).unstack()


def tables(
    cells: pd.DataFrame, tuned: pd.DataFrame, grid: pd.DataFrame, reps: int, seed: int, steps: int
) -> dict[str, pd.DataFrame]:
    """Every regression table of the report, by name (curves: the profiles' rho(tau));
    `tuned`: the study's tuned table; `grid`: train's cells.csv, the twins' reference;
    reps, seed: the bootstrap's; steps: the study's step budget."""
    summary_ = summary(cells, tuned, reps, seed)
    report = cells[cells["part"] == "report"]
    sets = winners.sets(report, MEASURE, steps)
    robust = winners.fits(report, MEASURE, steps, sets)
    scores, curves = profiles(cells, reps, seed)
    seeds = int(summary_["reporting_seeds"].max())
    rivals = int(sets.groupby(list(winners.TASK)).size().max()) - 1
    return {
        "summary": summary_,
        "winners": sets,
        "answer": answer.table(summary_, sets, robust),
        "agreement": answer.agreement_table(winners.agreement(report, MEASURE, steps, seed)),
        "power": winners.power(seeds, rivals),
        "stability": stability(cells),
        "robustness": robust,
        "improvement": improvement(cells, reps, seed),
        "profiles": scores,
        "wins": wins(cells, steps, reps, seed),
        "curves": curves,
        "twins": twins(cells, grid),
        "sensitivity": sensitivity(cells, steps),
        "clip_ratios": clipping.ratios(summary_),
        "clip_idle": clipping.idle(cells),
    }


def headline(found: dict[str, pd.DataFrame]) -> dict[str, object]:
    """The study's few figures for `dvc metrics` / `dvc exp show`: each optimizer's
    performance-profile score per clipping mode, its tasks won (unclipped), the winner
    sets' half-split agreement, how many measured edges agree with closed form, and the
    twins' largest difference."""
    scores, won = found["profiles"], found["wins"]
    stability_ = found["stability"]
    bare = won[won["clip"] == "none"] if (won["clip"] == "none").any() else won
    return {
        "profile_score": {
            clip: {r.optimizer: round(float(r.score), 6) for r in part.itertuples()}
            for clip, part in scores.groupby("clip", sort=False)
        },
        "wins": {r.optimizer: round(float(r.wins), 6) for r in bare.itertuples()},
        "half_split_agreement": round(float(found["agreement"]["agreement"].iloc[0]), 6),
        "edges_agreeing": float(stability_["agrees"].mean()) if len(stability_) else 0.0,
        "twins_largest_rel_diff": float(found["twins"]["largest_rel_diff"].max()),
    }


def report_line(html: Path, environ: Mapping[str, str]) -> str:
    """Where to open the report. A queued experiment (`dvc exp run --queue`) runs in a copy
    of the workspace that is deleted when it ends (cwd is not DVC_ROOT): its report is
    reached through the experiment."""
    here, workspace = html.resolve(), Path.cwd().resolve()
    root, name = environ.get("DVC_ROOT"), environ.get("DVC_EXP_NAME")
    if root and name and Path(root).resolve() != workspace and here.is_relative_to(workspace):
        relative = here.relative_to(workspace)
        applied = (Path(root).resolve() / relative).as_uri()
        return (
            f"Report: {relative} of queued experiment {name}, whose copy is deleted when it "
            f"ends: `dvc exp apply {name}` brings it to {applied}"
        )
    return f"Report: {here.as_uri()}"
