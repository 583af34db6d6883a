"""Publishing the pipeline's outputs: the grid's runs (one per trained cell) and the study's
(one per configuration at its tuned lr), each under a parent of its own, in their two
experiments.

What is published comes from the outputs that produced it, never from the current
params.yaml: a cell's params always match its histories. Before anything is sent, the
reports are checked against the outputs they say they were made from: a ranking or an
analysis made from other outputs is refused, naming the stale stage. Runs are keyed by
content, so publishing what is already there adds nothing; that check reads SQLite
directly, so a publish with nothing new costs no `import mlflow`.
"""

import json
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path

from tqdm import tqdm

from pipeline import grid, params
from pipeline.files import inputs
from pipeline.files.digest import combine, sha
from pipeline.grid.manifest import Manifest, stamped
from pipeline.run import machine
from pipeline.study import train
from pipeline.tracking import grid_runs, location, store, study_runs


@dataclass(frozen=True)
class GridOutputs:
    """What the grid's stages wrote, as publish reads it."""

    env: Path  # the env stage's fingerprint
    traces: Path  # train's folder: a trace per cell and manifest.json
    ranking: Path  # compare.md
    plots: Path  # compare's plots folder
    reports: Sequence[Path]  # the parent run's other artifacts (graph.dot drawn as SVG)


@dataclass(frozen=True)
class StudyOutputs:
    """What the study's stages wrote, as publish reads it."""

    cells: Path  # cells.parquet
    traces: Path  # traces.parquet
    classes: Path  # classes.parquet
    class_summary: Path  # classes.csv
    summary: Path  # summary.csv
    metrics: Path  # the analysis's metrics.json, stamped with the outputs it was made from
    manifest: Path  # what the study ran (its seeds)
    reports: Sequence[Path]  # the parent run's other artifacts


def checked_grid(out: GridOutputs) -> tuple[Manifest, str]:
    """(train's manifest, the ranking's text); InputError when compare's ranking was not
    made from the training outputs there now."""
    trained = Manifest.read(out.traces)
    ranking = out.ranking.read_text(encoding="utf-8") if out.ranking.exists() else ""
    if stamped(ranking) != trained.source:
        raise inputs.InputError(
            f"{out.ranking} was not made from the training outputs in {out.traces} "
            "(stage compare is stale): run `dvc repro`, then `make publish`"
        )
    return trained, ranking


def check_study(out: StudyOutputs) -> None:
    """InputError unless the analysis was made from the study outputs there now."""
    doc = inputs.read_json(out.metrics, "analysis")
    made_from = doc.get("source") if isinstance(doc, dict) else None
    try:
        made = train.source(out.cells, out.traces, out.classes)
    except FileNotFoundError as e:
        raise inputs.InputError(f"{e.filename}: file not found (run `dvc repro study`)") from None
    if made_from != made:
        raise inputs.InputError(
            f"{out.metrics} was not made from the study's outputs there now "
            "(stage analysis is stale): run `dvc repro`, then `make publish`"
        )


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


def tags(root: Path, env_path: Path) -> dict[str, str]:
    """Every run's tags: the commit, torch, what decides the numbers, the machine."""
    env = json.loads(env_path.read_text(encoding="utf-8"))
    return {
        **git_state(root),
        "torch_version": version("torch"),
        **{f"env.{k}": str(v) for k, v in env.items()},
        **{f"machine.{k}": v for k, v in machine.describe(machine.cpuinfo()).items()},
    }


def publish_grid(
    out: GridOutputs, trained: Manifest, p: params.PublishParams, root: Path, uri: str
) -> tuple[store.Outcome, str]:
    """The grid's runs, made from what train wrote: (the outcome, the parent's key)."""
    keys = [e.key(trained.data) for e in trained.entries]
    reports = [out.ranking, *sorted(out.reports), *sorted(out.plots.glob("*.png"))]
    parent_key = combine(*keys, *(sha(r.read_bytes()) for r in reports))
    known = location.published_keys(uri, p.experiment)
    if known and known[1].issuperset([*keys, parent_key]):
        return store.Outcome(known[0], 0, len(keys)), parent_key
    common = {**tags(root, out.env), "data_hash": trained.data[:16]}
    page = next((r for r in out.reports if r.name == "explorer.html"), None)
    with tempfile.TemporaryDirectory(prefix="gradlab-publish-") as tmp:
        link = partial(grid_runs.explorer_link, page=page, folder=Path(tmp)) if page else None
        contents = [
            grid_runs.cell_content(
                e,
                trained.data,
                out.traces,
                out.plots,
                common,
                p.points,
                link(e.cell.name) if link else None,
            )
            for e in trained.entries
        ]
        dot = next((r for r in out.reports if r.name == "graph.dot"), Path("-"))
        parent = store.RunContent(
            name=f"grid-{parent_key[:8]}",
            key=parent_key,
            tags=common,
            artifacts=reports + grid_runs.graph_svg(dot, Path(tmp)),
            params={"cells": str(len(keys)), "points": str(p.points), "source": trained.source},
        )
        progress = partial(tqdm, desc="publish grid", unit="run")
        return store.publish(uri, p.experiment, contents, parent, root, progress), parent_key


def publish_study(
    out: StudyOutputs, env: Path, p: params.PublishParams, root: Path, uri: str
) -> tuple[store.Outcome, str]:
    """The study's runs, made from its tables: (the outcome, the parent's key)."""
    summaries = [out.summary, out.class_summary]
    files = [out.cells, out.traces, out.classes, *summaries, *sorted(out.reports)]
    names = [name for path in summaries for name in study_runs.configs(path)]
    parent_key, run_keys = study_runs.keys(files, names)
    known = location.published_keys(uri, p.study_experiment)
    if known and known[1].issuperset([*run_keys.values(), parent_key]):
        return store.Outcome(known[0], 0, len(names)), parent_key
    import pandas as pd

    common = tags(root, env)
    summary = pd.read_csv(out.summary)
    report_rows = [("part", "==", "report")]  # all a run needs of the per-cell tables
    cells = pd.read_parquet(out.cells, filters=report_rows)
    traces = pd.read_parquet(out.traces, filters=report_rows)
    seeds = sorted(train.read_record(out.manifest).study.seeds.tune)
    contents = study_runs.contents(summary, cells, traces, run_keys, common, seeds)
    classes = pd.read_parquet(out.classes, filters=report_rows)
    class_summary = pd.read_csv(out.class_summary)
    contents += study_runs.contents(class_summary, classes, None, run_keys, common, seeds)
    parent = store.RunContent(
        name=f"study-{parent_key[:8]}",
        key=parent_key,
        tags=common,
        artifacts=[*summaries, *sorted(out.reports), out.cells, out.classes],
        params={"configurations": str(len(names)), "cells": str(len(cells))},
    )
    progress = partial(tqdm, desc="publish study", unit="run")
    return store.publish(uri, p.study_experiment, contents, parent, root, progress), parent_key


def top(ranking: str, path: Path, rows: int = 5) -> str:
    """The ranking's first rows and where the rest is."""
    lines = [line for line in ranking.splitlines() if line.startswith("|")]
    return "\n".join([f"Grid ranking, best {rows} (all: {path}):", *lines[: 2 + rows]])


@dataclass(frozen=True)
class Published:
    """What one publish did in each experiment, and how long each took."""

    grid: store.Outcome
    grid_key: str  # the grid parent's content key
    grid_seconds: float
    study: store.Outcome
    study_key: str
    study_seconds: float

    def receipt(self, p: params.PublishParams) -> dict[str, dict[str, str]]:
        """What was published: the parents' content keys (no ids, no URI: the same bytes on
        every machine), the receipt DVC tracks."""
        return {
            "grid": {"experiment": p.experiment, "parent": self.grid_key},
            "study": {"experiment": p.study_experiment, "parent": self.study_key},
        }

    def summary(self, uri: str) -> str:
        """The lines the stage prints: what was created and found, and how to look."""
        return "\n".join(
            [
                f"MLflow ({uri}):",
                counted("grid", "cell", self.grid, self.grid_seconds),
                counted("study", "configuration", self.study, self.study_seconds),
                location.ui_hint(uri, self.grid.experiment_id),
                f"(the study: #/experiments/{self.study.experiment_id}/runs)",
            ]
        )


def publish(
    grid_out: GridOutputs,
    study_out: StudyOutputs,
    trained: Manifest,
    p: params.PublishParams,
    root: Path,
    uri: str,
) -> Published:
    """The grid's runs, then the study's."""
    start = time.perf_counter()
    cells, grid_key = publish_grid(grid_out, trained, p, root, uri)
    middle = time.perf_counter()
    configs, study_key = publish_study(study_out, grid_out.env, p, root, uri)
    end = time.perf_counter()
    return Published(cells, grid_key, middle - start, configs, study_key, end - middle)


def counted(label: str, kind: str, outcome: store.Outcome, seconds: float) -> str:
    """One line of the printed summary: what a publish created and found."""
    found = f"{outcome.created} new {kind} runs, {outcome.present} already there"
    return f"  {label}: {found} ({seconds:.1f} s)"
