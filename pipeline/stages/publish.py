"""Stage `publish`: MLflow gets every trained grid cell's run under a parent with the grid's
reports (experiment `publish.experiment`), and the study's runs, one per configuration at
its tuned lr, under a parent with the study's report and tables (`publish.study_experiment`).

DVC runs it when what it publishes changed, or when its receipt (what it published: the
two parents' content keys, no ids, no URI: the same bytes on every machine) is missing, as
in a fresh clone. MLflow is outside DVC's view: after deleting mlflow.db, or for another
server, `make publish` forces it.

Runs are keyed by content, so publishing what is already there adds nothing; that check
reads SQLite directly, so a forced publish with nothing new costs no `import mlflow`.

What is published comes from what train wrote (its manifest and traces), never from the
current params.yaml: a cell's params always match its histories. If params.yaml has
changed since training, that is said in one line; if compare's reports were made from
other training outputs, publishing is refused, naming the stale stage.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from importlib.metadata import version
from pathlib import Path

from tqdm import tqdm

from pipeline import grid, params
from pipeline.files import atomic, inputs
from pipeline.grid import trace
from pipeline.grid.manifest import Entry, Manifest, combine, sha, stamped
from pipeline.run import interrupt, machine
from pipeline.tracking import store, study_runs

EXIT_TRACKING = 1
FINAL = (  # final metrics of each cell run (names are an API)
    "final_loss",
    "final_weight",
    "final_bias",
    "dist_to_optimum",
    "max_grad_norm",
    "clip_fraction",
    "diverged",
    "diverged_step",
)


def git_state(root: Path) -> dict[str, str]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else "unknown"

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": commit,
        "git_dirty": "unknown" if commit == "unknown" else str(bool(dirty)).lower(),
    }


def staleness(trained: Manifest, current: Sequence[grid.Cell]) -> str | None:
    """One line saying how params.yaml's grid differs from what was trained, or None."""
    was = {c.name: c for c in trained.cells()}
    now = {c.name: c for c in current}

    def names(found: list[str]) -> str:
        return ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")

    parts = [
        f"{what} {names(found)}"
        for what, found in (
            ("not trained:", [n for n in now if n not in was]),
            ("no longer in the grid:", [n for n in was if n not in now]),
            ("settings changed:", [n for n in now if n in was and now[n] != was[n]]),
        )
        if found
    ]
    if not parts:
        return None
    return (
        f"note: params.yaml has changed since train ran (stage train is stale; {'; '.join(parts)}):"
        " published what was trained; `dvc repro` trains the current params"
    )


def cell_content(
    entry: Entry, data: str, folder: Path, plots: Path, tags: dict[str, str], points: int
) -> store.RunContent:
    """One cell's MLflow run: settings as params, histories at history_steps, final metrics."""
    cell, m = entry.cell, entry.measures
    csv = folder / f"{cell.name}.csv"
    frame = trace.read_frame(csv)
    keep = frame.iloc[trace.history_steps(len(frame), points)]
    history = [
        (name, float(value), int(step))
        for name in trace.HISTORY
        for step, value in zip(keep["step"], keep[name], strict=True)
    ]
    finals = [(name, float(m[name]), 0) for name in FINAL if m.get(name) is not None]  # type: ignore[arg-type]
    diverged = {"diverged_reason": str(m["diverged_reason"])} if m["diverged"] else {}
    plot = plots / "cells" / f"{cell.name}.png"
    return store.RunContent(
        name=cell.name,
        key=entry.key(data),
        params={k: str(v) for k, v in cell.settings().items()},
        tags={**tags, "cell": cell.name, "diverged": str(bool(m["diverged"])).lower(), **diverged},
        metrics=history + finals,
        artifacts=[csv, plot] if plot.exists() else [csv],
    )


def graph_svg(dot: Path, folder: Path) -> list[Path]:
    """The walkthrough's graph drawn by Graphviz into `folder`, or nothing without it."""
    if shutil.which("dot") is None or not dot.exists():
        return []
    svg = folder / "graph.svg"
    subprocess.run(["dot", "-Tsvg", str(dot), "-o", str(svg)], check=True)
    return [svg]


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
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    with inputs.or_exit():
        trained = Manifest.read(args.traces)
        ranking = args.ranking.read_text(encoding="utf-8") if args.ranking.exists() else ""
        if stamped(ranking) != trained.source:
            raise inputs.InputError(
                f"{args.ranking} was not made from the training outputs in {args.traces} "
                "(stage compare is stale): run `dvc repro`, then `make publish`"
            )
        check_study(args)
    if note := staleness(trained, grid.cells(p.train)):
        print(note, file=sys.stderr)
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
    uri = store.default_uri(root)
    with interrupt.exit_on_signal():
        try:
            start = time.perf_counter()
            outcome, grid_key = _publish(args, p.publish, trained, root, uri)
            middle = time.perf_counter()
            studied, study_key = _publish_study(args, p, root, uri)
            end = time.perf_counter()
        except store.TrackingError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(EXIT_TRACKING) from None
    print(top(ranking, args.ranking))
    print(f"MLflow ({uri}):")
    print(
        f"  grid: {outcome.created} new cell runs, {outcome.present} already there "
        f"({middle - start:.1f} s)"
    )
    print(
        f"  study: {studied.created} new configuration runs, {studied.present} already there "
        f"({end - middle:.1f} s)"
    )
    print(store.ui_hint(uri, outcome.experiment_id))
    print(f"(the study: #/experiments/{studied.experiment_id}/runs)")
    receipt = {
        "grid": {"experiment": p.publish.experiment, "parent": grid_key},
        "study": {"experiment": p.publish.study_experiment, "parent": study_key},
    }
    atomic.write_json(args.receipt, receipt)


def top(ranking: str, path: Path, rows: int = 5) -> str:
    """The ranking's first rows and where the rest is."""
    lines = [line for line in ranking.splitlines() if line.startswith("|")]
    return "\n".join([f"Grid ranking, best {rows} (all: {path}):", *lines[: 2 + rows]])


def check_study(args: argparse.Namespace) -> None:
    """InputError unless the analysis was made from the study outputs there now."""
    doc = inputs.read_json(args.study_metrics, "analysis")
    made_from = doc.get("source") if isinstance(doc, dict) else None
    if made_from != study_source(args.study_cells, args.study_traces, args.study_classes):
        raise inputs.InputError(
            f"{args.study_metrics} was not made from the study's outputs there now "
            "(stage analysis is stale): run `dvc repro`, then `make publish`"
        )


def study_source(*files: Path) -> str:
    """The digest of the study's outputs that analysis stamps into its metrics."""
    try:
        return combine(*(sha(f.read_bytes()) for f in files))
    except FileNotFoundError as e:
        raise inputs.InputError(f"{e.filename}: file not found (run `dvc repro study`)") from None


def _tags(root: Path, env_path: Path) -> dict[str, str]:
    env = json.loads(env_path.read_text(encoding="utf-8"))
    return {
        **git_state(root),
        "torch_version": version("torch"),
        **{f"env.{k}": str(v) for k, v in env.items()},
        **{f"machine.{k}": v for k, v in machine.describe(machine.cpuinfo()).items()},
    }


def _publish(
    args: argparse.Namespace,
    p: params.PublishParams,
    trained: Manifest,
    root: Path,
    uri: str,
) -> tuple[store.Outcome, str]:
    keys = [e.key(trained.data) for e in trained.entries]
    reports = [args.ranking, *sorted(args.report), *sorted(args.plots.glob("*.png"))]
    parent_key = combine(*keys, *(sha(r.read_bytes()) for r in reports))
    known = store.published_keys(uri, p.experiment)
    if known and known[1].issuperset([*keys, parent_key]):
        return store.Outcome(known[0], 0, len(keys)), parent_key
    tags = {**_tags(root, args.env), "data_hash": trained.data[:16]}
    contents = [
        cell_content(e, trained.data, args.traces, args.plots, tags, p.points)
        for e in trained.entries
    ]
    with tempfile.TemporaryDirectory(prefix="gradlab-publish-") as tmp:
        dot = next((r for r in args.report if r.name == "graph.dot"), Path("-"))
        parent = store.RunContent(
            name=f"grid-{parent_key[:8]}",
            key=parent_key,
            tags=tags,
            artifacts=reports + graph_svg(dot, Path(tmp)),
            params={"cells": str(len(keys)), "points": str(p.points), "source": trained.source},
        )
        progress = partial(tqdm, desc="publish grid", unit="run")
        return store.publish(uri, p.experiment, contents, parent, root, progress), parent_key


def _publish_study(
    args: argparse.Namespace, p: params.Params, root: Path, uri: str
) -> tuple[store.Outcome, str]:
    summaries = [args.study_summary, args.study_class_summary]
    files = [args.study_cells, args.study_traces, args.study_classes, *summaries]
    files += sorted(args.study_report)
    names = [name for path in summaries for name in study_runs.configs(path)]
    parent_key, run_keys = study_runs.keys(files, names)
    experiment = p.publish.study_experiment
    known = store.published_keys(uri, experiment)
    if known and known[1].issuperset([*run_keys.values(), parent_key]):
        return store.Outcome(known[0], 0, len(names)), parent_key
    import pandas as pd

    tags = _tags(root, args.env)
    summary = pd.read_csv(args.study_summary)
    report_rows = [("part", "==", "report")]  # all a run needs of the per-cell tables
    cells = pd.read_parquet(args.study_cells, filters=report_rows)
    traces = pd.read_parquet(args.study_traces, filters=report_rows)
    tuning = pd.read_parquet(args.study_cells, columns=["seed"], filters=[("part", "==", "tune")])
    seeds = sorted(tuning["seed"].unique().tolist())
    contents = study_runs.contents(summary, cells, traces, run_keys, tags, seeds)
    classes = pd.read_parquet(args.study_classes, filters=report_rows)
    class_summary = pd.read_csv(args.study_class_summary)
    contents += study_runs.contents(class_summary, classes, None, run_keys, tags, seeds)
    parent = store.RunContent(
        name=f"study-{parent_key[:8]}",
        key=parent_key,
        tags=tags,
        artifacts=[*summaries, *sorted(args.study_report), args.study_cells, args.study_classes],
        params={"configurations": str(len(names)), "cells": str(len(cells))},
    )
    progress = partial(tqdm, desc="publish study", unit="run")
    return store.publish(uri, experiment, contents, parent, root, progress), parent_key
