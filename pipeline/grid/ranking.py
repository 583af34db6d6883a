"""The grid's comparison: every trained cell ranked, its loss curves as data for `dvc plots`,
and compare.md, all from what train wrote (its manifest and traces).

Cells rank by their final distance to the generating line (comparable across losses,
unlike the loss value); distances closer than `tie` (compare.tie: rounding, not learning)
rank equal: a cell's rank is 1 + the number of cells nearer by more than `tie`. Cells
that stopped early rank last, together. Rows of one rank are listed by the secondary
measure, first_below (the first step with loss below compare.threshold), then by name:
an order to read them in, not a ranking. The Markdown names the training outputs it was
made from (publish checks it) and ends with the environment that decided the numbers.
"""

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipeline.files import markdown as md
from pipeline.grid import plots
from pipeline.grid.manifest import Manifest, stamp
from pipeline.grid.trace import Measures

NUMBERS = ("dist_to_optimum", "final_loss", "final_weight", "final_bias")
SETTINGS = ("loss", "optimizer", "clip", "seed")


def first_below(trace: pd.DataFrame, threshold: float) -> int | str:
    """The first step whose loss is below `threshold`, or "never"."""
    steps = trace["step"][trace["loss"] < threshold]
    return int(steps.iloc[0]) if len(steps) else "never"


def _number(value: float | int | str | None) -> float:
    return math.nan if value is None else float(value)


def diverged(m: Measures) -> str:
    """ "no", or where and why training stopped, e.g. "step 12 (loss)"."""
    return f"step {m['diverged_step']} ({m['diverged_reason']})" if m["diverged"] else "no"


def ranks(distance: npt.ArrayLike, failed: npt.ArrayLike, tie: float) -> npt.NDArray[np.int64]:
    """1 + the number of cells that trained to the end and are nearer by more than `tie`;
    the cells that `failed` share the rank after every other."""
    d, bad = np.asarray(distance, dtype=np.float64), np.asarray(failed, dtype=bool)
    ok = np.sort(d[~bad])
    nearer = np.searchsorted(ok, d - tie, side="left")  # ok cells with distance < d - tie
    return np.where(bad, (~bad).sum() + 1, 1 + nearer).astype(np.int64)


def ranked(
    trained: Manifest, traces: Mapping[str, pd.DataFrame], threshold: float, tie: float
) -> pd.DataFrame:
    """One row per cell, by rank (`ranks`), then first_below, then name."""
    rows = [
        {"cell": c.name}
        | {key: _number(e.measures[key]) for key in NUMBERS}
        | {"first_below": first_below(traces[c.name], threshold)}
        | {key: _number(e.measures[key]) for key in ("max_grad_norm", "clip_fraction")}
        | {"diverged": diverged(e.measures)}
        | {"loss": c.loss, "optimizer": c.optimizer, "clip": c.clip, "seed": c.seed}
        for e in trained.entries
        for c in [e.cell]
    ]
    frame = pd.DataFrame(rows)
    failed = frame["diverged"] != "no"
    frame.insert(0, "rank", ranks(frame["dist_to_optimum"], failed, tie))
    steps = pd.to_numeric(frame["first_below"], errors="coerce").fillna(np.inf)  # never: last
    order = ["rank", "steps", "cell"]
    frame = frame.assign(steps=steps).sort_values(order, kind="stable")
    return frame.drop(columns="steps").reset_index(drop=True)


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


def legend(threshold: float, tie: float) -> str:
    """What the ranking measures, in one paragraph."""
    return (
        "Rank: by final distance to the generating line (`dist_to_optimum`); distances"
        f" within {tie:g} of each other rank equal (`compare.tie`: rounding, not learning);"
        " cells that stopped early rank last. Within a rank, rows are listed by"
        f" `first_below` (the first step with loss below {threshold:g}), then by name."
        " The grid is the tutorial's one seed at params.yaml's lrs: a walk-through, not a"
        " comparison; which to use is the study's answer (reports/study/answer.csv: tuned"
        " lrs, 40 seeds, intervals)."
    )


def report(
    table: pd.DataFrame, env: Mapping[str, object], source: str, threshold: float, tie: float
) -> str:
    """compare.md: a title, the source line, the legend, the ranking, the environment."""
    title = f"# Ranking of {len(table)} cells, best first"
    parts = [title, "", stamp(source), "", legend(threshold, tie), "", frame_table(table)]
    return "\n".join([*parts, environment(env)])


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


TOP_COLUMNS = ("rank", "cell", "dist_to_optimum", "first_below", "final_loss", "diverged")


def top(ranking: str, path: Path, rows: int = 5, width: int = 100) -> str:
    """The ranking's first rows, in TOP_COLUMNS, its legend and where the rest is, in
    lines of at most `width` characters."""
    import itertools
    import textwrap

    lines = ranking.splitlines()
    first = itertools.dropwhile(lambda line: not line.startswith("|"), lines)
    block = itertools.takewhile(lambda line: line.startswith("|"), first)  # the ranking
    table = [[f.strip() for f in line.strip("|").split("|")] for line in block]
    header, body = table[0], table[2 : 2 + rows]
    picked = [header.index(c) for c in TOP_COLUMNS]
    cells = [[row[i] for i in picked] for row in [header, *body]]
    sizes = [max(len(r[k]) for r in cells) for k in range(len(picked))]
    text = ["  ".join(v.ljust(n) for v, n in zip(r, sizes, strict=True)).rstrip() for r in cells]
    legend = next((line for line in lines if line.startswith("Rank:")), "")
    note = textwrap.wrap(f"{legend} All {len(table) - 2} cells: {path}", width)
    return "\n".join([f"Grid ranking, best {rows}:", *[t[:width] for t in text], *note])
