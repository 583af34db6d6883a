"""The grid's comparison: every trained cell ranked, its loss curves as data for `dvc plots`,
and compare.md, all from what train wrote (its manifest and traces).

Rows are ranked: cells that trained to the end first, then by distance to the generating
line (comparable across losses, unlike the loss value), then by final loss, then by name,
so ties always come out in the same order. The Markdown names the training outputs it was
made from (publish checks it) and ends with the environment that decided the numbers.
"""

import json
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.files import markdown as md
from pipeline.grid import plots
from pipeline.grid.manifest import Manifest, stamp
from pipeline.grid.trace import Measures

NUMBERS = ("final_loss", "final_weight", "final_bias", "dist_to_optimum")


def first_below(trace: pd.DataFrame, threshold: float) -> int | str:
    """The first step whose loss is below `threshold`, or "never"."""
    steps = trace["step"][trace["loss"] < threshold]
    return int(steps.iloc[0]) if len(steps) else "never"


def _number(value: float | int | str | None) -> float:
    return math.nan if value is None else float(value)


def diverged(m: Measures) -> str:
    """ "no", or where and why training stopped, e.g. "step 12 (loss)"."""
    return f"step {m['diverged_step']} ({m['diverged_reason']})" if m["diverged"] else "no"


def ranked(trained: Manifest, traces: Mapping[str, pd.DataFrame], threshold: float) -> pd.DataFrame:
    """One row per cell, best first: trained to the end, then distance, loss, name."""
    rows = [
        {"cell": c.name, "loss": c.loss, "optimizer": c.optimizer, "clip": c.clip, "seed": c.seed}
        | {key: _number(e.measures[key]) for key in NUMBERS}
        | {"first_below": first_below(traces[c.name], threshold)}
        | {key: _number(e.measures[key]) for key in ("max_grad_norm", "clip_fraction")}
        | {"diverged": diverged(e.measures)}
        for e in trained.entries
        for c in [e.cell]
    ]
    frame = pd.DataFrame(rows)
    order = ["failed", "dist_to_optimum", "final_loss", "cell"]
    frame = frame.assign(failed=frame["diverged"] != "no").sort_values(order, kind="stable")
    return frame.drop(columns="failed").reset_index(drop=True)


def _text(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def frame_table(frame: pd.DataFrame) -> str:
    """A table as GitHub Markdown: numbers to 4 significant digits, right-aligned."""
    align: list[md.Align] = [
        "right" if pd.api.types.is_numeric_dtype(frame[c]) else "left" for c in frame.columns
    ]
    rows = [[_text(v) for v in row] for row in frame.itertuples(index=False)]
    return md.table(list(map(str, frame.columns)), rows, align) + "\n"


def _field(value: object) -> str:
    """A value of env.json as text: a list joined by commas, strings as they are, else JSON."""
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return value if isinstance(value, str) else json.dumps(value)


def environment(env: Mapping[str, object]) -> str:
    """An "Environment" Markdown section: one row per field of env.json, in its order."""
    rows = pd.DataFrame({"field": list(env), "value": [_field(v) for v in env.values()]})
    return "## Environment (what decides the numbers)\n\n" + frame_table(rows)


def report(table: pd.DataFrame, env: Mapping[str, object], source: str) -> str:
    """compare.md: a title, the source line, the ranking, the environment."""
    title = f"# Ranking of {len(table)} cells, best first"
    return "\n".join([title, "", stamp(source), "", frame_table(table), environment(env)])


def curves(trained: Manifest, traces: Mapping[str, pd.DataFrame], stride: int) -> pd.DataFrame:
    """Long format for `dvc plots`: each cell's settings, then step, loss_value and
    grad_norm at every stride-th step and at its last."""
    parts = []
    for c in trained.cells():
        trace, rows = traces[c.name], np.arange(len(traces[c.name]))
        keep = (rows % stride == 0) | (rows == len(rows) - 1)
        part = trace.loc[keep, ["step", "loss", "grad_norm"]].rename(columns={"loss": "loss_value"})
        settings = {"cell": c.name, "loss": c.loss, "optimizer": c.optimizer, "clip": c.clip}
        parts.append(part.assign(**settings, seed=c.seed))
    columns = ["cell", "loss", "optimizer", "clip", "seed", "step", "loss_value", "grad_norm"]
    return pd.concat(parts, ignore_index=True).loc[:, columns]


def _init(m: Measures) -> tuple[float, float]:
    return _number(m["init_weight"]), _number(m["init_bias"])


def plotted(trained: Manifest, traces: Mapping[str, pd.DataFrame]) -> list[plots.Curve]:
    """What the plots show of each trained cell, in training order."""
    return [
        plots.Curve.of(e.cell, traces[e.cell.name], _init(e.measures), bool(e.measures["diverged"]))
        for e in trained.entries
    ]
