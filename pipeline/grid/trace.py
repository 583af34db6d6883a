"""What one cell's training recorded: a row per step, and the cell's measures.

Trace columns (one row per step; values before clipping unless named `clipped_`):
  step, loss, grad_norm (L2, before clipping), grad_weight, grad_bias,
  clipped_grad_weight, clipped_grad_bias (what the optimizer applied), clipped (0/1),
  weight, bias (after the step);
then the optimizer's state after the step, as torch.optim keeps it in `optimizer.state`:
one column per state tensor and parameter, `<key>_weight` and `<key>_bias` (e.g.
momentum_buffer, exp_avg and exp_avg_sq, square_avg, sum), whichever the optimizer and its
settings hold (plain SGD: none). COLUMNS are the first, fixed part: the batched engine
records exactly those (pipeline.engine.regression.TRACE); the state columns are the
reference loop's alone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pipeline.grid import Cell

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported inside the functions that need it: publish's no-op path (every
# `dvc repro`) uses the names below and must not pay for it.


class Row(NamedTuple):
    """One step of one cell; built by name: Row(step=..., loss=..., ...)."""

    step: int
    loss: float
    grad_norm: float
    grad_weight: float
    grad_bias: float
    clipped_grad_weight: float
    clipped_grad_bias: float
    clipped: int
    weight: float
    bias: float


COLUMNS = Row._fields
PARAMETERS = ("weight", "bias")  # the state columns' suffixes, in this order
INT_COLUMNS = ("step", "clipped")
HISTORY = tuple(c for c in COLUMNS if c not in INT_COLUMNS)  # the per-step float series
# a cell's measures (names are an API: MLflow metrics, reports/cells.csv, the drift check)
MEASURES = (
    "final_loss",
    "final_weight",
    "final_bias",
    "dist_to_optimum",
    "init_weight",
    "init_bias",
    "max_grad_norm",
    "clip_fraction",
    "steps_run",
    "diverged",
    "diverged_step",
    "diverged_reason",
)
Measures = dict[str, float | int | str | None]


@dataclass(frozen=True)
class Trace:
    cell: Cell
    initial: tuple[float, float]  # (weight, bias) before the first step
    rows: list[Row]  # every finite step
    final_loss: float | None  # loss at the final parameters; None if not finite
    diverged_step: int | None = None  # first step with a non-finite value
    diverged_reason: str | None = None  # "loss", "gradient" or "parameters"
    state_columns: tuple[str, ...] = ()  # state_column(key, parameter) of each state value
    states: list[tuple[float, ...]] = field(default_factory=list)  # per row: its values

    def final(self) -> tuple[float, float]:
        """(weight, bias) after the last finite step."""
        if not self.rows:
            return self.initial
        return self.rows[-1].weight, self.rows[-1].bias


def state_column(key: str, parameter: str) -> str:
    """The trace column of state tensor `key` (torch's name) of `parameter`."""
    return f"{key}_{parameter}"


def _dtypes() -> defaultdict[str, type]:
    """float32 for every column (the state's too) but the integer ones."""
    import numpy as np

    return defaultdict(lambda: np.float32, {c: np.int64 for c in INT_COLUMNS})


def to_frame(trace: Trace) -> pd.DataFrame:
    """The trace as a table, COLUMNS then the state's; float32 columns print as the
    shortest exact decimal. (float64 cells are recorded in float32 too: a trace shows, the
    measures keep bits.)"""
    import pandas as pd

    frame = pd.DataFrame(trace.rows, columns=list(COLUMNS))
    if trace.state_columns:
        state = pd.DataFrame(trace.states, columns=list(trace.state_columns), index=frame.index)
        frame = pd.concat([frame, state], axis=1)
    return frame.astype({c: _dtypes()[c] for c in frame.columns})


def read_frame(path: Path) -> pd.DataFrame:
    """A trace file as to_frame wrote it (state columns included)."""
    import pandas as pd

    return pd.read_csv(path, dtype=_dtypes())


def measures(trace: Trace, optimum: tuple[float, float]) -> Measures:
    """One cell's measures, named as MEASURES."""
    weight, bias = trace.final()
    clipped = [row.clipped for row in trace.rows]
    return {
        "final_loss": trace.final_loss,
        "final_weight": weight,
        "final_bias": bias,
        "dist_to_optimum": math.hypot(weight - optimum[0], bias - optimum[1]),
        "init_weight": trace.initial[0],
        "init_bias": trace.initial[1],
        "max_grad_norm": max((row.grad_norm for row in trace.rows), default=0.0),
        "clip_fraction": sum(clipped) / len(clipped) if clipped else 0.0,
        "steps_run": len(trace.rows),
        "diverged": int(trace.diverged_step is not None),
        "diverged_step": trace.diverged_step,
        "diverged_reason": trace.diverged_reason,
    }


def history_steps(steps: int, points: int) -> list[int]:
    """About `points` of the steps 0..steps-1, log-spaced: every step at first, where the
    curves move fastest, then further apart; the first and the last always. MLflow ingests
    ~100 us per metric point, so each history is a budget, not a copy of the trace."""
    if steps <= points:
        return list(range(steps))
    import numpy as np

    spaced = np.geomspace(1, steps, points).round().astype(int) - 1
    return sorted({0, *spaced.tolist(), steps - 1})
