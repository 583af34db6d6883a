"""Publishing the pipeline's outputs: the grid's runs (one per trained cell) and the study's
(one per configuration at its tuned lr), each under a parent of its own, in their two
experiments.

What is published comes from the outputs that produced it, never from the current
params.yaml: a cell's params always match its histories. Before anything is sent, the
reports are checked against the outputs they say they were made from: a ranking or an
analysis made from other outputs is refused, naming the stale stage. Runs are keyed by
content, so publishing what is already there adds nothing; that check reads SQLite
directly, so a publish with nothing new costs no `import mlflow`. Every trace is checked
against the digest train's manifest records before anything is sent (a trace edited after
training would otherwise land under its genuine content key).
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tqdm import tqdm

from pipeline import grid, params
from pipeline.files import inputs
from pipeline.files.digest import combine, sha
from pipeline.grid.manifest import Entry, Manifest, stamped
from pipeline.study import train
from pipeline.tracking import grid_runs, location, provenance, receipt, store, study_runs, views


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
    """(train's manifest, the ranking's text); InputError, one line per file, when a trace
    is not the one train's manifest records (its sha256), or compare's ranking was not made
    from the training outputs there now. Nothing reaches MLflow before this passes."""
    trained = Manifest.read(out.traces)
    wrong = []
    for entry in trained.entries:
        path = out.traces / f"{entry.cell.name}.csv"
        try:
            found = sha(path.read_bytes())
        except FileNotFoundError:
            wrong.append(f"{path}: file not found (run `dvc repro train`)")
            continue
        if found != entry.trace:
            wrong.append(
                f"{path}: sha256 {found[:12]} where train's manifest records "
                f"{entry.trace[:12]} (changed after training): `make heal` restores it"
            )
    if wrong:
        raise inputs.InputError("\n".join(wrong))
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


def publish_grid(
    out: GridOutputs, trained: Manifest, p: params.PublishParams, root: Path, uri: str
) -> tuple[store.Outcome, list[str]]:
    """The grid's runs, made from what train wrote: (the outcome, [the parent's key, *the
    cells' keys])."""
    keys = [e.key(trained.data) for e in trained.entries]
    reports = [out.ranking, *sorted(out.reports), *sorted(out.plots.glob("*.png"))]
    parent_key = combine(*keys, *(sha(r.read_bytes()) for r in reports))
    best = [e.key(trained.data) for e in sorted(trained.entries, key=_distance)]
    common = {**provenance.tags(root, out.env), "data_hash": trained.data[:16]}
    page = next((r for r in out.reports if r.name == "explorer.html"), None)
    contents = [
        grid_runs.cell_content(e, trained.data, out.traces, out.plots, common, p.points, page)
        for e in trained.entries
    ]
    dot = next((r for r in out.reports if r.name == "graph.dot"), Path("-"))
    parent = store.RunContent(
        name=f"grid-{parent_key[:8]}",
        key=parent_key,
        tags=common,
        artifacts=reports,
        params={"cells": str(len(keys)), "points": str(p.points), "source": trained.source},
        drawn=partial(grid_runs.graph_svg, dot),
    )
    progress = partial(tqdm, desc="publish grid", unit="run")
    describe = partial(_described, views.GRID, parent_key, best)
    outcome = store.publish(uri, p.experiment, contents, parent, root, progress, describe)
    return outcome, [parent_key, *keys]


def _distance(entry: Entry) -> float:
    """A cell's distance to the generating line, the ranking's measure; inf if diverged."""
    value = entry.measures.get("dist_to_optimum")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.inf


def _described(
    headline: views.Headline, key: str, shown: list[str], ids: dict[str, str]
) -> dict[str, str]:
    """The experiment's tags, its view showing the runs of the content keys `shown`."""
    return views.tags(headline, key, [ids[k] for k in shown if k in ids])


def publish_study(
    out: StudyOutputs, env: Path, p: params.PublishParams, root: Path, uri: str
) -> tuple[store.Outcome, list[str]]:
    """The study's runs, made from its tables: (the outcome, [the parent's key, *the runs'
    keys])."""

    summaries = [out.summary, out.class_summary]
    common = provenance.tags(root, env)
    report_rows = [("part", "==", "report")]  # all a run needs of the per-cell tables
    cells, traces, classes = (
        inputs.read_table(path, "study", report_rows)
        for path in (out.cells, out.traces, out.classes)
    )
    summary, class_summary = (inputs.read_table(path, "analysis") for path in summaries)
    seeds = sorted(train.read_record(out.manifest).study.seeds.tune)
    contents = study_runs.contents(summary, cells, traces, common, seeds)
    contents += study_runs.contents(class_summary, classes, None, common, seeds)
    holds = [*summaries, *sorted(out.reports), out.cells, out.classes]
    parent_key = study_runs.parent_key(holds, [c.key for c in contents])
    keys = [parent_key, *(c.key for c in contents)]
    named = {c.name: c.key for c in contents}
    winners = [named[name] for name in _bests(out.reports) if name in named]
    parent = store.RunContent(
        name=f"study-{parent_key[:8]}",
        key=parent_key,
        tags=common,
        artifacts=holds,
        params={"configurations": str(len(contents)), "cells": str(len(cells))},
    )
    progress = partial(tqdm, desc="publish study", unit="run")
    describe = partial(_described, views.STUDY, parent_key, winners)
    outcome = store.publish(uri, p.study_experiment, contents, parent, root, progress, describe)
    return outcome, keys


def _bests(reports: Sequence[Path]) -> list[str]:
    """The configurations the analysis named best of their task (winners.csv; a tie: each),
    what the study's saved view shows."""
    import pandas as pd

    table = next((r for r in reports if r.name == "winners.csv"), None)
    if table is None:
        return []
    sets = pd.read_csv(table)
    return sets[sets["best"]]["config"].tolist()


@dataclass(frozen=True)
class Published:
    """What one publish did in each experiment, and how long each took."""

    grid: store.Outcome
    grid_keys: list[str]  # the grid parent's content key, then its cells'
    grid_seconds: float
    study: store.Outcome
    study_keys: list[str]
    study_seconds: float

    def receipt(self, p: params.PublishParams) -> receipt.Receipt:
        """What was published, the receipt DVC tracks (pipeline.tracking.receipt)."""
        return receipt.made(
            {
                "grid": (p.experiment, self.grid_keys),
                "study": (p.study_experiment, self.study_keys),
            }
        )

    def summary(self, uri: str) -> str:
        """The lines the stage prints: what was replaced or closed and why, what was
        created and found, and how to look."""
        return "\n".join(
            [
                *self.grid.notes,
                *self.study.notes,
                f"MLflow ({uri}):",
                counted("grid", "cell", self.grid, self.grid_seconds),
                counted("study", "configuration", self.study, self.study_seconds),
                *location.ui_hint(uri, self.views()),
            ]
        )

    def views(self) -> list[tuple[str, str, str]]:
        """What the links open: (what, experiment id, view key) of the grid and the study."""
        return [
            (views.GRID.label, self.grid.experiment_id, self.grid_keys[0]),
            (views.STUDY.label, self.study.experiment_id, self.study_keys[0]),
        ]


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
    cells, grid_keys = publish_grid(grid_out, trained, p, root, uri)
    middle = time.perf_counter()
    configs, study_keys = publish_study(study_out, grid_out.env, p, root, uri)
    end = time.perf_counter()
    return Published(cells, grid_keys, middle - start, configs, study_keys, end - middle)


def counted(label: str, kind: str, outcome: store.Outcome, seconds: float) -> str:
    """One line of the printed summary: what a publish created and found."""
    found = f"{outcome.created} new {kind} runs, {outcome.present} already there"
    replaced = f", {outcome.replaced} replaced" if outcome.replaced else ""
    return f"  {label}: {found}{replaced} ({seconds:.1f} s)"
