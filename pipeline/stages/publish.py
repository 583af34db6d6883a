"""Stage `publish`: MLflow gets every trained grid cell's run under a parent with the grid's
reports (experiment `publish.experiment`), and the study's runs, one per configuration at
its tuned lr, under a parent with the study's report and tables (`publish.study_experiment`)
(pipeline.tracking.publish).

DVC runs it when what it publishes changed, or when its receipt (what it published: every
run's content key, no ids, no URI: the same bytes on every machine) is missing: in a fresh
clone, or after the env stage found the tracking store lacking a run the receipt names (a
deleted mlflow.db, a wiped server, another MLFLOW_TRACKING_URI; pipeline.tracking.receipt).
`make publish` forces it.
"""

import argparse
import sys
from pathlib import Path

from pipeline import grid, params
from pipeline.files import atomic, inputs
from pipeline.grid import ranking as ranking_
from pipeline.run import interrupt
from pipeline.tracking import location, publish

EXIT_TRACKING = 1


GRID = {  # the grid's outputs: flag -> what it is (--report: one or more files)
    "env": "env.json of stage env", "traces": "train's folder", "ranking": "compare.md",
    "plots": "compare's plots folder", "report": "the grid parent's artifacts",
}  # fmt: skip
STUDY = {  # the study's, as --study-<flag>
    "cells": "cells.parquet", "traces": "traces.parquet", "classes": "classes.parquet",
    "class-summary": "classes.csv", "summary": "summary.csv", "metrics": "the analysis' metrics",
    "manifest": "what the study ran", "report": "the study parent's artifacts",
}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for flag, what in [*GRID.items(), *((f"study-{k}", v) for k, v in STUDY.items())]:
        many = "+" if flag.endswith("report") else None
        parser.add_argument(f"--{flag}", type=Path, nargs=many, required=True, help=what)
    parser.add_argument("--receipt", type=Path, required=True, help="JSON: what was published")
    a = vars(parser.parse_args(argv))
    p = params.load_or_exit(a["params"])
    grid_out = publish.GridOutputs(*(a[k] for k in GRID))
    study_out = publish.StudyOutputs(*(a[f"study_{k.replace('-', '_')}"] for k in STUDY))
    with inputs.or_exit():
        trained, ranking = publish.checked_grid(grid_out)
        publish.check_study(study_out)
    if note := publish.staleness(trained, grid.cells(p.train)):
        print(note, file=sys.stderr)
    root = location.root()
    uri = location.default_uri(root)
    with interrupt.exit_on_signal():
        try:
            done = publish.publish(grid_out, study_out, trained, p.publish, root, uri)
        except location.TrackingError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(EXIT_TRACKING) from None
    print(ranking_.top(ranking, a["ranking"]))
    print(done.summary(uri))
    atomic.write_json(a["receipt"], done.receipt(p.publish))
