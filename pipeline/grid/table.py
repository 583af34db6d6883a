"""Results of the grid: one row per cell (reports/cells.csv), and the headline figures.

cells.csv holds every cell's settings and measures at full precision: pandas and
`dvc plots` read it, the drift check compares it. metrics.json (`dvc metrics`, `dvc exp
show`) holds only the headline figures a person compares across experiments: a few
dozen, not cells x measures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.grid import trace

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.grid.manifest import Manifest

SETTINGS = ("cell", "loss", "optimizer", "clip", "seed", "lr")
Headline = dict[str, int | float | dict[str, dict[str, int | float]]]


def table(manifest: Manifest) -> pd.DataFrame:
    """One row per trained cell: SETTINGS, then trace.MEASURES, in training order."""
    import pandas as pd

    rows = [
        {
            "cell": e.cell.name,
            "loss": e.cell.loss,
            "optimizer": e.cell.optimizer,
            "clip": e.cell.clip,
            "seed": e.cell.seed,
            "lr": e.cell.optimizer_kwargs["lr"],
        }
        | {name: e.measures[name] for name in trace.MEASURES}
        for e in manifest.entries
    ]
    frame = pd.DataFrame(rows, columns=[*SETTINGS, *trace.MEASURES])
    return frame.astype({"diverged_step": "Int64", "diverged": "int64", "steps_run": "int64"})


def to_csv(frame: pd.DataFrame) -> str:
    """cells.csv: floats as their shortest exact decimal, missing values empty."""
    return str(frame.to_csv(index=False))


def headline(frame: pd.DataFrame) -> Headline:
    """Cells, diverged cells, and per optimizer, loss and clipping mode the median
    distance to the generating line (loss-agnostic) and the diverged count."""

    def groups(by: str, *extra: str) -> dict[str, dict[str, int | float]]:
        out = {}
        for name, part in frame.groupby(by, sort=False):
            figures: dict[str, int | float] = {
                "median_dist": float(part["dist_to_optimum"].median()),
                "diverged": int(part["diverged"].sum()),
            }
            if "clip_fraction" in extra:
                figures["mean_clip_fraction"] = float(part["clip_fraction"].mean())
            out[str(name)] = figures
        return out

    return {
        "cells": len(frame),
        "diverged": int(frame["diverged"].sum()),
        "optimizer": groups("optimizer"),
        "loss": groups("loss"),
        "clip": groups("clip", "clip_fraction"),
    }
