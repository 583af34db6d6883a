"""What the study found, as tables: every number the report shows comes from here.

Each function takes the study's per-cell table (pipeline.study.chunks' columns) and returns one
table, a pure function of it (no file, no plot):
- summary: one row per configuration (pipeline.study.protocol's measures);
- stability: per gradient-descent configuration, the largest lr that converged on the
  fine grid around the analytic edge, beside the edge, and what happened past it;
- robustness: per scenario and loss, how far the loss's own minimiser and the best
  trained configuration land from the line the data were drawn from;
- improvement: per clipping mode, each optimizer's probability of needing fewer steps
  than each other (rliable), averaged over scenarios x losses;
- profiles: per clipping mode, each optimizer's performance profile over scenarios x
  losses (AlgoPerf's rho(tau), tau in [1, 4]) and its integrated score;
- twins: the headline grid's cells through both engines, their finals side by side.
tables() computes all of them (the classification's table is classes(), of its own cells).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.study import protocol, stats
from pipeline.study.configuration import CONFIG, config_name

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
    return protocol.summary(rows[rows["part"] == "report"], tuned, reps, seed, CLASS_MEDIANS)


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
        converged = part["steps_to_target"].to_numpy() >= 0
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


def robustness(cells: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and loss: the median (over reporting seeds) distance from the loss's
    minimiser on the data to the line the data were drawn from, and the trained distance
    of the configuration `best` names for that scenario and loss (tuned lr, reporting seeds)."""
    report = cells[(cells["part"] == "report") & (cells["lr_kind"] == "tuned")]
    report = report.assign(
        minimiser_error=np.hypot(
            report["target_weight"] - report["line_weight"],
            report["target_bias"] - report["line_bias"],
        )
    )
    keys = ["scenario", "loss"]
    per = report.groupby(keys, sort=True)["minimiser_error"].median()
    chosen = best[[*keys, "optimizer", "clip"]]
    merged = report.merge(chosen, on=[*keys, "optimizer", "clip"])
    trained = merged.groupby(keys, sort=True)["true_error"].median().rename("trained_error")
    out = per.to_frame().join(trained).reset_index().merge(chosen, on=keys)
    return out[[*keys, "optimizer", "clip", "minimiser_error", "trained_error"]]


def winners(summary_: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and loss, the configuration with the lowest IQM steps-to-target (ties:
    the higher success rate, then the name), with its interval."""
    ranked = summary_.sort_values(
        ["scenario", "loss", "iqm_steps", "success_rate", "config"],
        ascending=[True, True, True, False, True],
        kind="stable",
    )
    return ranked.groupby(["scenario", "loss"], sort=False).head(1).reset_index(drop=True)


def _scores(report: pd.DataFrame, clip: str, median: bool) -> tuple[list[str], np.ndarray]:
    """optimizers and (optimizers, workloads[, runs]) steps at each tuned lr for `clip`;
    workloads = scenario x loss; median over runs when `median`."""
    part = report[(report["clip"] == clip) & (report["lr_kind"] == "tuned")]
    part = part.sort_values(["optimizer", "scenario", "loss", "seed"], kind="stable")
    optimizers = list(dict.fromkeys(part["optimizer"]))
    steps = stats.steps_or_inf(part["steps_to_target"]).reshape(
        len(optimizers), -1, part["seed"].nunique()
    )
    return optimizers, (np.median(steps, axis=-1) if median else steps)


def improvement(cells: pd.DataFrame) -> pd.DataFrame:
    """Long format: clip, optimizer, versus, probability (optimizer needs fewer steps)."""
    import pandas as pd

    report = cells[cells["part"] == "report"]
    rows = []
    for clip in dict.fromkeys(report["clip"]):
        names, steps = _scores(report, clip, median=False)
        matrix = stats.improvement_matrix(steps)
        rows += [
            {"clip": clip, "optimizer": a, "versus": b, "probability": float(matrix[i, j])}
            for i, a in enumerate(names)
            for j, b in enumerate(names)
        ]
    return pd.DataFrame(rows)


def profiles(cells: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores: clip, optimizer, score, rho at PROFILE_AT; curves: clip, optimizer, tau, rho)."""
    import pandas as pd

    report = cells[cells["part"] == "report"]
    scores, curves = [], []
    for clip in dict.fromkeys(report["clip"]):
        names, medians = _scores(report, clip, median=True)
        rho, score = stats.performance_profile(medians, TAUS), stats.profile_score(medians, 4.0)
        for i, name in enumerate(names):
            at = {f"rho_{t:g}": float(rho[i, np.flatnonzero(t == TAUS)[0]]) for t in PROFILE_AT}
            scores.append({"clip": clip, "optimizer": name, "score": float(score[i]), **at})
            curves += [
                {"clip": clip, "optimizer": name, "tau": float(t), "rho": float(r)}
                for t, r in zip(TAUS, rho[i], strict=True)
            ]
    return pd.DataFrame(scores), pd.DataFrame(curves)


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
    counted = np.clip(stats.steps_or_inf(tune["steps_to_target"]), 1.0, NEVER * steps)
    by = tune.assign(counted=counted).groupby([*CONFIG, "lr"], sort=True)["counted"]
    return by.quantile([0.25, 0.5, 0.75]).unstack()


def clip_ratios(summary: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, loss and optimizer (index): IQM steps with each clip mode over IQM
    steps without (columns). 0: only the clipped runs reached the target; inf: only the
    unclipped ones; NaN: neither."""
    iqm = summary.set_index(list(CONFIG))["iqm_steps"].unstack("clip")
    with np.errstate(divide="ignore", invalid="ignore"):
        return iqm.drop(columns="none").div(iqm["none"], axis=0)


def clip_idle(cells: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, loss and optimizer (index), for each clip mode but none (columns):
    True where clipping never acted at the tuned lr (clip_fraction 0 on every reporting
    seed), so the clipped runs are the unclipped ones."""
    report = cells[(cells["part"] == "report") & (cells["lr_kind"] == "tuned")]
    most = report.groupby(list(CONFIG), sort=True)["clip_fraction"].max().unstack("clip")
    return most.drop(columns="none", errors="ignore") == 0


def tables(
    cells: pd.DataFrame, tuned: pd.DataFrame, grid: pd.DataFrame, reps: int, seed: int, steps: int
) -> dict[str, pd.DataFrame]:
    """Every regression table of the report, by name (curves: the profiles' rho(tau));
    `tuned`: the study's tuned table; `grid`: train's cells.csv, the twins' reference;
    reps, seed: the bootstrap's; steps:
    the study's step budget."""
    summary_ = summary(cells, tuned, reps, seed)
    scores, curves = profiles(cells)
    return {
        "summary": summary_,
        "stability": stability(cells),
        "robustness": robustness(cells, winners(summary_)),
        "improvement": improvement(cells),
        "profiles": scores,
        "curves": curves,
        "twins": twins(cells, grid),
        "sensitivity": sensitivity(cells, steps),
        "clip_ratios": clip_ratios(summary_),
        "clip_idle": clip_idle(cells),
    }


def headline(found: dict[str, pd.DataFrame]) -> dict[str, object]:
    """The study's few figures for `dvc metrics` / `dvc exp show`: each optimizer's
    performance-profile score per clipping mode, its wins (scenario x loss), how many
    measured edges agree with closed form, and the twins' largest difference."""
    scores = found["profiles"]
    wins = winners(found["summary"])["optimizer"].value_counts()
    stability_ = found["stability"]
    return {
        "profile_score": {
            clip: {r.optimizer: round(float(r.score), 6) for r in part.itertuples()}
            for clip, part in scores.groupby("clip", sort=False)
        },
        "wins": {name: int(wins.get(name, 0)) for name in dict.fromkeys(scores["optimizer"])},
        "edges_agreeing": float(stability_["agrees"].mean()) if len(stability_) else 0.0,
        "twins_largest_rel_diff": float(found["twins"]["largest_rel_diff"].max()),
    }


def winners_text(summary: pd.DataFrame) -> str:
    """The winner of each scenario and loss, one line each."""
    lines = [
        "Tuned winners (lowest IQM steps to target, 95% CI, reporting seeds; stayed: the"
        " share of seeds still within tol at the end):"
    ]
    for row in winners(summary).itertuples(index=False):
        ci = f"[{row.iqm_lo:.4g}, {row.iqm_hi:.4g}]"
        lines.append(
            f"  {row.scenario:<11} {row.loss:<9} {row.optimizer + '+' + row.clip:<16} "
            f"lr {row.tuned_lr:<9.3g} IQM {row.iqm_steps:<6.4g} {ci:<16} "
            f"stayed {row.stayed_rate:.0%}"
        )
    return "\n".join(lines)


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
