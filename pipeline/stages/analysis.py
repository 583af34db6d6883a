"""Stage `analysis`: what the study found, as tables (reports/study/*.csv) and one
self-contained HTML report, from the study's outputs only.

Prints the answer per scenario and loss (pipeline.study.answer) and the report's path.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pipeline import params
from pipeline.files import atomic, inputs
from pipeline.study import analysis, answer, clipping, columns, report, train

# each written as <out>/<name>.csv; `tables` summarises the parquet tables (for `make drift`)
TABLES = (
    "summary", "classes", "answer", "winners", "agreement", "power", "stability", "robustness",
    "improvement", "profiles", "wins", "twins", "tables",
)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--cells", type=Path, required=True, help="study's cells.parquet")
    parser.add_argument("--traces", type=Path, required=True, help="study's traces.parquet")
    parser.add_argument("--classes", type=Path, required=True, help="study's classes.parquet")
    parser.add_argument("--tuned", type=Path, required=True, help="study's tuned.csv")
    parser.add_argument("--grid", type=Path, required=True, help="train's reports/cells.csv")
    parser.add_argument("--manifest", type=Path, required=True, help="study's manifest.json")
    parser.add_argument("--out", type=Path, required=True, help="folder of the tables")
    parser.add_argument("--html", type=Path, required=True, help="the report")
    parser.add_argument("--metrics", type=Path, required=True, help="the headline figures")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)

    with inputs.or_exit():
        cells, traces, classes, tuned = (
            inputs.read_table(path, "study")
            for path in (args.cells, args.traces, args.classes, args.tuned)
        )
        grid = inputs.read_table(args.grid, "train")
        ran = train.read_record(args.manifest)
    b = p.analysis.bootstrap
    found = {
        **analysis.tables(cells, tuned, grid, b.reps, b.seed, ran.study.steps),
        "classes": analysis.classes(classes, tuned, b.reps, b.seed),
        "tables": columns.summary({"cells": cells, "traces": traces, "classes": classes}),
        "class_idle": clipping.idle(classes),
    }
    for name in TABLES:
        atomic.write_text(args.out / f"{name}.csv", found[name].to_csv(index=False))
    atomic.write_text(args.html, report.html(found, cells, traces, ran, p.analysis.bootstrap))
    source = train.source(args.cells, args.traces, args.classes)
    atomic.write_json(args.metrics, {**analysis.headline(found), "source": source})
    agreement = float(found["agreement"]["agreement"].iloc[0])
    seeds = int(found["summary"]["reporting_seeds"].max())
    print(answer.text(found["answer"], agreement, seeds))
    print(analysis.report_line(args.html, os.environ))
