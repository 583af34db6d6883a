"""What one cell's training recorded: a row per step, and the cell's measures.

Trace columns (one row per step; values before clipping unless named `clipped_`):
  step, loss, grad_norm (L2, before clipping), grad_weight, grad_bias,
  clipped_grad_weight, clipped_grad_bias (what the optimizer applied), clipped (0/1),
  weight, bias (after the step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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

    def final(self) -> tuple[float, float]:
        """(weight, bias) after the last finite step."""
        if not self.rows:
            return self.initial
        return self.rows[-1].weight, self.rows[-1].bias


def _dtypes() -> dict[str, type]:
    import numpy as np

    return {c: np.int64 if c in INT_COLUMNS else np.float32 for c in COLUMNS}


def to_frame(trace: Trace) -> pd.DataFrame:
    """The trace as a table; float32 columns print as the shortest exact decimal.
    (float64 cells are recorded in float32 too: a trace shows, the measures keep bits.)"""
    import pandas as pd

    return pd.DataFrame(trace.rows, columns=list(COLUMNS)).astype(_dtypes())


def read_frame(path: Path) -> pd.DataFrame:
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
