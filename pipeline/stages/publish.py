"""Stage `publish`: MLflow gets every trained grid cell's run under a parent with the grid's
reports (experiment `publish.experiment`), and the study's runs, one per configuration at
its tuned lr, under a parent with the study's report and tables (`publish.study_experiment`)
(pipeline.tracking.publish).

DVC runs it when what it publishes changed, or when its receipt (what it published: the
two parents' content keys, no ids, no URI: the same bytes on every machine) is missing, as
in a fresh clone. MLflow is outside DVC's view: after deleting mlflow.db, or for another
server, `make publish` forces it.
"""

import argparse
import os
import sys
import time
from pathlib import Path

from pipeline import grid, params
from pipeline.files import atomic, inputs
from pipeline.run import interrupt
from pipeline.tracking import publish, store

EXIT_TRACKING = 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--env", type=Path, required=True, help="env.json of stage env")
    parser.add_argument("--traces", type=Path, required=True, help="train's folder")
    parser.add_argument("--ranking", type=Path, required=True, help="compare.md")
    parser.add_argument("--plots", type=Path, required=True, help="compare's plots folder")
    parser.add_argument("--report", type=Path, nargs="+", required=True, help="parent artifacts")
    parser.add_argument("--study-cells", type=Path, required=True, help="study's cells.parquet")
    parser.add_argument("--study-traces", type=Path, required=True, help="study's traces")
    parser.add_argument("--study-classes", type=Path, required=True, help="its classification")
    parser.add_argument("--study-class-summary", type=Path, required=True, help="its summary")
    parser.add_argument("--study-summary", type=Path, required=True, help="analysis' summary")
    parser.add_argument("--study-metrics", type=Path, required=True, help="analysis' metrics")
    parser.add_argument("--study-report", type=Path, nargs="+", required=True, help="its artifacts")
    parser.add_argument("--receipt", type=Path, required=True, help="JSON: what was published")
    a = parser.parse_args(argv)
    p = params.load_or_exit(a.params)
    grid_out = publish.GridOutputs(a.env, a.traces, a.ranking, a.plots, a.report)
    study_out = publish.StudyOutputs(
        a.study_cells, a.study_traces, a.study_classes, a.study_class_summary,
        a.study_summary, a.study_metrics, a.study_report,
    )  # fmt: skip
    with inputs.or_exit():
        trained, ranking = publish.checked_grid(grid_out)
        publish.check_study(study_out)
    if note := publish.staleness(trained, grid.cells(p.train)):
        print(note, file=sys.stderr)
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
    uri = store.default_uri(root)
    with interrupt.exit_on_signal():
        try:
            start = time.perf_counter()
            cells, grid_key = publish.publish_grid(grid_out, trained, p.publish, root, uri)
            middle = time.perf_counter()
            configs, study_key = publish.publish_study(study_out, a.env, p.publish, root, uri)
            end = time.perf_counter()
        except store.TrackingError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(EXIT_TRACKING) from None
    print(publish.top(ranking, a.ranking))
    print(f"MLflow ({uri}):")
    print(f"  grid: {cells.created} new cell runs, {cells.present} already there ", end="")
    print(f"({middle - start:.1f} s)")
    print(
        f"  study: {configs.created} new configuration runs, {configs.present} already there ",
        end="",
    )
    print(f"({end - middle:.1f} s)")
    print(store.ui_hint(uri, cells.experiment_id))
    print(f"(the study: #/experiments/{configs.experiment_id}/runs)")
    receipt = {
        "grid": {"experiment": p.publish.experiment, "parent": grid_key},
        "study": {"experiment": p.publish.study_experiment, "parent": study_key},
    }
    atomic.write_json(a.receipt, receipt)
