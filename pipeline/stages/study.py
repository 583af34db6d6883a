"""Stage `study`: every cell of the study trained by the batched engine, in chunks
(pipeline.study.train). Writes one row per cell to cells.parquet (classification:
classes.parquet) and the traced steps to traces.parquet, each chunk as it arrives, and
tuned.csv, each configuration's tuned lr (what the analysis and publish read); every file
appears whole or not at all. manifest.json records what was run (the study's params
and scenarios): the analysis reports that, not params.yaml now.
"""

import argparse
from pathlib import Path

from pipeline import params
from pipeline.files import atomic
from pipeline.grid import data
from pipeline.run import cluster, interrupt
from pipeline.study import scenarios, train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--scenarios", type=Path, required=True, help="generate's study data")
    parser.add_argument("--points", type=Path, required=True, help="the grid's data (twins)")
    parser.add_argument("--cells", type=Path, required=True, help="parquet: a row per cell")
    parser.add_argument("--traces", type=Path, required=True, help="parquet: traced steps")
    parser.add_argument("--classes", type=Path, required=True, help="generate's classification")
    parser.add_argument("--class-cells", type=Path, required=True, help="parquet: a row per cell")
    parser.add_argument("--tuned", type=Path, required=True, help="CSV: each configuration's lr")
    parser.add_argument("--manifest", type=Path, required=True, help="JSON: what was run")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    points = scenarios.read_points_or_exit(args.scenarios, p)
    classes = scenarios.read_classes_or_exit(args.classes, p)
    grid_points = data.read_points_or_exit(args.points)
    with (
        interrupt.exit_on_signal(),
        atomic.replacing(args.cells) as cells,
        atomic.replacing(args.traces) as traces,
        atomic.replacing(args.class_cells) as class_cells,
        cluster.session(cluster.where(p.env)) as here,
    ):
        tables = train.Tables({"cells": cells, "traces": traces, "classes": class_cells})
        tuned = train.study(p, points, grid_points, classes, here, tables.write)
        tables.close()
        atomic.write_text(args.tuned, tuned.to_csv(index=False))
        atomic.write_json(args.manifest, train.ran(p).model_dump(mode="json"))
