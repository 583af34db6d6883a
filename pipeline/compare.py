"""Stage `compare`: one table over every grid cell, the loss curves as data, and plots.

Rows are ranked: cells that trained to the end first, then by final loss, then by
distance to the optimum, then by name, so ties always come out in the same order.
The Markdown ends with the environment the numbers came from (the `env` stage's file).
Reading and checking the inputs is pipeline.compare_inputs.
"""

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import atomic, generate, grid, params, plots
from pipeline import markdown as md  # `markdown` here is this module's table renderer
from pipeline.compare_inputs import InputError, Summary, check, read_env, read_metrics, read_traces

NUMBERS = ("final_loss", "final_weight", "final_bias", "dist_to_optimum")
CURVES = ("step", "loss", "grad_norm")  # columns of curves.csv after `cell`


def first_below(trace: pd.DataFrame, threshold: float) -> int | str:
    """The first step whose loss is below `threshold`, or "never"."""
    steps = trace["step"][trace["loss"] < threshold]
    return int(steps.iloc[0]) if len(steps) else "never"


def number(summary: Summary, key: str) -> float:
    """A metric as a float; NaN where the metrics file holds null."""
    value = summary.get(key)
    if value is None:
        return math.nan
    if not isinstance(value, int | float):
        raise InputError(f"{key} = {value!r}: not a number")
    return float(value)


def diverged(summary: Summary) -> str:
    """ "no", or where and why training stopped, e.g. "step 12 (loss)"."""
    if not summary.get("diverged"):
        return "no"
    return f"step {summary.get('diverged_step')} ({summary.get('diverged_reason')})"


def table(
    cells: Sequence[grid.Cell],
    traces: Mapping[str, pd.DataFrame],
    metrics: Mapping[str, Summary],
    threshold: float,
) -> pd.DataFrame:
    """One row per cell, best first: converged before diverged, then by loss, distance, name."""
    check(cells, traces, metrics)
    rows = [
        {"cell": c.name, "loss": c.loss, "optimizer": c.optimizer, "clip": c.clip, "seed": c.seed}
        | {key: number(metrics[c.name], key) for key in NUMBERS}
        | {"first_below": first_below(traces[c.name], threshold)}
        | {key: number(metrics[c.name], key) for key in ("max_grad_norm", "clip_fraction")}
        | {"diverged": diverged(metrics[c.name])}
        for c in cells
    ]
    frame = pd.DataFrame(rows)
    order = ["failed", "final_loss", "dist_to_optimum", "cell"]
    frame = frame.assign(failed=frame["diverged"] != "no").sort_values(order, kind="stable")
    return frame.drop(columns="failed").reset_index(drop=True)


def _text(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def markdown(table: pd.DataFrame) -> str:
    """The table as GitHub Markdown: numbers to 4 significant digits, right-aligned."""
    align: list[md.Align] = [
        "right" if pd.api.types.is_numeric_dtype(table[c]) else "left" for c in table.columns
    ]
    rows = [[_text(v) for v in row] for row in table.itertuples(index=False)]
    return md.table(list(map(str, table.columns)), rows, align) + "\n"


def _field(value: object) -> str:
    """A value of env.json as text: a list joined by commas, strings as they are, else JSON."""
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return value if isinstance(value, str) else json.dumps(value)


def environment(env: Mapping[str, object]) -> str:
    """An "Environment" Markdown section: one row per field of env.json, in its order."""
    rows = pd.DataFrame({"field": list(env), "value": [_field(v) for v in env.values()]})
    return "## Environment\n\n" + markdown(rows)


def curves(
    cells: Sequence[grid.Cell], traces: Mapping[str, pd.DataFrame], stride: int
) -> pd.DataFrame:
    """Long format for `dvc plots`: cell, step, loss, grad_norm at every stride-th step of
    every cell, and at its last."""
    parts = []
    for c in cells:
        trace, rows = traces[c.name], np.arange(len(traces[c.name]))
        keep = (rows % stride == 0) | (rows == len(rows) - 1)
        parts.append(trace.loc[keep, list(CURVES)].assign(cell=c.name))
    return pd.concat(parts, ignore_index=True).loc[:, ["cell", *CURVES]]


def runs(
    cells: Sequence[grid.Cell], traces: Mapping[str, pd.DataFrame], metrics: Mapping[str, Summary]
) -> list[plots.Run]:
    """What the plots need of each cell."""
    return [
        plots.Run.of(
            cell=c,
            trace=traces[c.name],
            init=(number(metrics[c.name], "init_weight"), number(metrics[c.name], "init_bias")),
            diverged=bool(metrics[c.name].get("diverged")),
        )
        for c in cells
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in ("traces", "metrics", "env", "data", "table", "markdown", "curves", "plots"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    cells = grid.cells(p.train)
    data = generate.read_points_or_exit(args.data)
    try:
        traces, metrics = read_traces(cells, args.traces), read_metrics(args.metrics)
        summary, env = table(cells, traces, metrics, p.compare.threshold), read_env(args.env)
    except InputError as e:
        print("\n".join(f"error: {line}" for line in str(e).splitlines()), file=sys.stderr)
        raise SystemExit(params.EXIT_BAD_INPUT) from None
    atomic.write_text(args.table, summary.to_csv(index=False))
    atomic.write_text(args.markdown, markdown(summary) + "\n" + environment(env))
    stride = p.compare.curve_stride
    atomic.write_text(args.curves, curves(cells, traces, stride).to_csv(index=False))
    with atomic.replacing(args.plots, directory=True) as folder:
        optimum = generate.optimum(p.generate)
        plots.draw(folder, runs(cells, traces, metrics), data, optimum, p.compare.threshold)


if __name__ == "__main__":
    main()
