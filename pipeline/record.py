"""What one cell's training recorded, as a table and as final metrics.

Trace columns (one row per step; values before clipping unless named `clipped_`):
  step, loss, grad_norm (L2, before clipping), grad_weight, grad_bias,
  clipped_grad_weight, clipped_grad_bias (what the optimizer applied), clipped (0/1),
  weight, bias (after the step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.grid import Cell

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported inside the functions that need it: publish's no-op path (every
# `dvc repro`) uses the names below and must not pay for it.

COLUMNS = (
    "step",
    "loss",
    "grad_norm",
    "grad_weight",
    "grad_bias",
    "clipped_grad_weight",
    "clipped_grad_bias",
    "clipped",
    "weight",
    "bias",
)
INT_COLUMNS = ("step", "clipped")
HISTORY = tuple(c for c in COLUMNS if c not in INT_COLUMNS)  # the per-step float series
Row = tuple[float, ...]


@dataclass(frozen=True)
class Trace:
    cell: Cell
    initial: tuple[float, float]  # (weight, bias) before the first step
    rows: list[Row]  # every finite step, in COLUMNS order
    final_loss: float | None  # loss at the final parameters; None if not finite
    diverged_step: int | None = None  # first step with a non-finite value
    diverged_reason: str | None = None  # "loss", "gradient" or "parameters"

    def final(self) -> tuple[float, float]:
        """(weight, bias) after the last finite step."""
        if not self.rows:
            return self.initial
        last = self.rows[-1]
        return last[COLUMNS.index("weight")], last[COLUMNS.index("bias")]


def _dtypes() -> dict[str, type]:
    import numpy as np

    return {c: np.int64 if c in INT_COLUMNS else np.float32 for c in COLUMNS}


def to_frame(trace: Trace) -> pd.DataFrame:
    """The trace as a table; float32 columns print as the shortest exact decimal."""
    import pandas as pd

    return pd.DataFrame(trace.rows, columns=list(COLUMNS)).astype(_dtypes())


def read_frame(path: Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(path, dtype=_dtypes())


def summary(trace: Trace, optimum: tuple[float, float]) -> dict[str, float | int | str | None]:
    """Final metrics of one cell (names are an API: MLflow, the metrics file, drift)."""
    weight, bias = trace.final()
    norms = [row[COLUMNS.index("grad_norm")] for row in trace.rows]
    clipped = [row[COLUMNS.index("clipped")] for row in trace.rows]
    return {
        "final_loss": trace.final_loss,
        "final_weight": weight,
        "final_bias": bias,
        "dist_to_optimum": math.hypot(weight - optimum[0], bias - optimum[1]),
        "init_weight": trace.initial[0],
        "init_bias": trace.initial[1],
        "max_grad_norm": max(norms, default=0.0),
        "clip_fraction": sum(clipped) / len(clipped) if clipped else 0.0,
        "steps_run": len(trace.rows),
        "diverged": int(trace.diverged_step is not None),
        "diverged_step": trace.diverged_step,
        "diverged_reason": trace.diverged_reason,
    }
