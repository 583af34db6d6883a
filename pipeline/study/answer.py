"""The study's answer, reconciled: per scenario and loss (a task), which optimizer and
clipping reach the target fastest and stay there, how sure that is, and how well the
loss fits the scenario's line. One measure (protocol.MEASURE), one table: what the stage
prints and what the report opens with.

A task's best is its configuration of lowest IQM; its winner set, every configuration
not significantly worse (pipeline.study.winners). Ties are never broken: tied bests are
all named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.study.protocol import LEVEL

if TYPE_CHECKING:
    import pandas as pd

TASK = ["scenario", "loss"]
WIDTH = 100  # the printed answer fits a 100-column terminal


def _short(config: str) -> str:
    """optimizer+clip of a configuration name scenario-loss-optimizer-clip."""
    return "+".join(config.split("-")[-2:])


def table(summary: pd.DataFrame, sets: pd.DataFrame, robust: pd.DataFrame) -> pd.DataFrame:
    """One row per task, in the summary's order: its best configuration(s) (optimizer+clip,
    ties joined by " = "), the best's tuned lr, IQM of sustained steps with its interval,
    success rate and median first touch, the winner set (its size and members), and the
    fit: the median distance to the line of the best's trained (w, b) and of the loss's
    minimisers, and whether the loss is among the scenario's best fits."""
    import pandas as pd

    measured = summary.set_index("config")
    fits = robust.drop_duplicates(TASK).set_index(TASK)
    rows = []
    for (scenario, loss), part in sets.groupby(TASK, sort=False):
        best = part[part["best"]]["config"].tolist()
        first = measured.loc[best[0]]
        members = part[part["in_set"]]["config"].tolist()
        fit = fits.loc[(scenario, loss)]
        rows.append(
            {
                "scenario": scenario,
                "loss": loss,
                "best": " = ".join(_short(c) for c in best),
                "tuned_lr": float(first["tuned_lr"]),
                "iqm_steps": float(first["iqm_steps"]),
                "iqm_lo": float(first["iqm_lo"]),
                "iqm_hi": float(first["iqm_hi"]),
                "success_rate": float(first["success_rate"]),
                "first_touch_median": float(first["first_touch_median"]),
                "set_size": len(members),
                "rivals": len(part),
                "winner_set": " ".join(_short(c) for c in members),
                "trained_error": float(fit["trained_error"]),
                "minimiser_error": float(fit["minimiser_error"]),
                "best_fit": bool(fit["best_fit"]),
            }
        )
    return pd.DataFrame(rows)


def agreement_table(value: float) -> pd.DataFrame:
    """The half-split agreement as a one-row table (what `make drift` compares)."""
    import pandas as pd

    return pd.DataFrame({"measure": ["half_split_agreement"], "agreement": [value]})


def _steps(v: float) -> str:
    return "never" if not np.isfinite(v) else f"{v:.4g}"


def text(answer: pd.DataFrame, agreement: float, seeds: int) -> str:
    """The answer, one line per task, within WIDTH columns."""
    head = (
        f"The answer: per scenario and loss, the optimizer+clip that stays within tol\n"
        f"soonest (IQM of sustained steps over {seeds} reporting seeds, {LEVEL:.0%} CI) and\n"
        f"how many of the rivals are not significantly worse (Wilcoxon signed-rank, Holm,\n"
        f"5%; split the seeds in halves: {agreement:.0%} of the sets hold both halves' best).\n"
        f"line: median distance of the trained (w, b) to the generating line; fit: the loss\n"
        f"is among its scenario's best-fitting losses.\n"
    )
    columns = (
        f"{'scenario':<11}{'loss':<9}{'best':<23}{'set':>6}  {'IQM [95% CI]':<21}"
        f"{'ok':>5}{'line':>9}  fit"
    )
    lines = [head + columns]
    for r in answer.itertuples(index=False):
        best = r.best if len(r.best) <= 22 else r.best[:21] + "…"
        ci = f"{_steps(r.iqm_steps)} [{_steps(r.iqm_lo)}, {_steps(r.iqm_hi)}]"
        lines.append(
            f"{r.scenario:<11}{r.loss:<9}{best:<23}{f'{r.set_size}/{r.rivals}':>6}  {ci:<21}"
            f"{r.success_rate:>5.0%}{r.trained_error:>9.3g}  {'yes' if r.best_fit else 'no'}"
        )
    return "\n".join(lines)
