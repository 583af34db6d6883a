"""Stage publish: MLflow gets what train wrote, never what params.yaml says now."""

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from pipeline import grid, params
from pipeline.grid import trace
from pipeline.grid.manifest import Manifest
from pipeline.stages import compare, env, generate, publish, train, walkthrough
from pipeline.tracking import grid_runs, store
from pipeline.tracking import publish as publishing
from pipeline.tracking.location import PAYLOAD_TAG
from tests.conftest import BIN, copy_project, missing, sandbox_env, small_grid, write_params


def argv(**paths: Path) -> list[str]:
    return [arg for name, path in paths.items() for arg in (f"--{name}", str(path))]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, raw_params: dict) -> Path:
    """Every stage's outputs but publish's for a 2 x 2 x 2 grid of 30 steps."""
    root = tmp_path_factory.mktemp("project")
    p = write_params(root / "params.yaml", small_grid(raw_params))
    reports, data = root / "reports", root / "data/points.csv"
    env.main(argv(params=p, out=reports / "env.json"))
    generate.main(argv(params=p, out=data))
    cells = {"cells": reports / "cells.csv", "metrics": reports / "metrics.json"}
    train.main(argv(params=p, data=data, traces=root / "traces", **cells))
    outs = {"ranking": reports / "compare.md", "curves": reports / "curves.csv"}
    compare.main(
        argv(
            params=p,
            traces=root / "traces",
            data=data,
            env=reports / "env.json",
            **outs,
            plots=reports / "plots",
        )
    )
    walkthrough.main(argv(params=p, out=reports / "walkthrough"))
    return root


def publish_argv(root: Path, ranking: Path | None = None) -> list[str]:
    r = root / "reports"
    return [
        *argv(params=root / "params.yaml", env=r / "env.json", traces=root / "traces"),
        *argv(ranking=ranking or r / "compare.md", plots=r / "plots"),
        "--report",
        str(r / "cells.csv"),
        str(r / "walkthrough/walkthrough.md"),
        str(r / "walkthrough/graph.dot"),
        *[arg for name in STUDY for arg in (f"--study-{name}", str(r / f"study/{name}"))],
        "--study-report",
        str(r / "study/index.html"),
        "--receipt",
        str(r / "published.json"),
    ]


STUDY = ("cells", "traces", "classes", "class-summary", "summary", "metrics", "manifest")  # unbuilt


def test_a_cell_run_holds_the_trained_settings_and_its_whole_history(project: Path) -> None:
    """cell_content takes params from the manifest's cell and histories from its trace:
    at history_steps, one point per series and step."""
    trained = Manifest.read(project / "traces")
    entry = trained.entries[0]

    content = grid_runs.cell_content(
        entry, trained.data, project / "traces", project / "reports/plots", {}, points=8
    )

    assert content.params == {k: str(v) for k, v in entry.cell.settings().items()}
    assert content.params["steps"] == "30"
    loss_steps = [s for name, _, s in content.metrics if name == "loss"]
    assert loss_steps == trace.history_steps(30, 8) and loss_steps[-1] == 29
    assert {name for name, _, _ in content.metrics} >= set(trace.HISTORY) | {"final_loss"}
    assert content.key == entry.key(trained.data)


def test_staleness_names_what_changed_since_training(
    project: Path, committed: params.Params
) -> None:
    """A grid that gained a cell, lost one and changed another is described in one line."""
    trained = Manifest.read(project / "traces")
    now = list(trained.cells())
    gone = now.pop()
    changed = grid.Cell(**{**now[0].__dict__, "steps": 100})
    added = grid.cells(committed.train)[-1]

    line = publishing.staleness(trained, [changed, *now[1:], added])

    assert line is not None and "\n" not in line and "stage train is stale" in line
    assert f"not trained: {added.name}" in line and f"no longer in the grid: {gone.name}" in line
    assert f"settings changed: {changed.name}" in line
    assert publishing.staleness(trained, trained.cells()) is None


def test_a_ranking_from_other_training_outputs_is_refused(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """compare.md stamped with other training outputs: exit 2 naming stage compare, no run."""
    stale = tmp_path / "compare.md"
    text = (project / "reports/compare.md").read_text()
    stale.write_text(text.replace(Manifest.read(project / "traces").source, "0" * 16))

    with pytest.raises(SystemExit) as exit_:
        publish.main(publish_argv(project, ranking=stale))

    (line,) = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and "stage compare is stale" in line and "dvc repro" in line
    assert not (project / "mlflow.db").exists()


def test_the_graph_svg_is_drawn_at_publish_time(tmp_path: Path, project: Path) -> None:
    """With Graphviz the walkthrough's DOT becomes graph.svg for the parent run; without it,
    nothing (the tracked outputs never depend on it)."""
    dot = project / "reports/walkthrough/graph.dot"
    if subprocess.run(["which", "dot"], capture_output=True).returncode != 0:
        missing("Graphviz's dot is not installed (apt-get install graphviz)")

    (svg,) = grid_runs.graph_svg(dot, tmp_path)

    assert b"<svg" in svg.read_bytes() and b"MseLossBackward0" in svg.read_bytes()
    assert grid_runs.graph_svg(tmp_path / "absent.dot", tmp_path) == []


# --- the sequence a user hit: experiments, a failed one, then make publish ----------------
def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [f"{BIN}/dvc", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=sandbox_env(root.parent),
        timeout=600,
    )
    assert not check or run.returncode == 0, run.stdout + run.stderr
    return run


def cell_runs(root: Path) -> list:
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    exp = client.get_experiment_by_name("gradlab")
    found = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in found if "mlflow.parentRunId" in r.data.tags]


def assert_runs_match_their_histories(root: Path) -> None:
    """Every cell run's `steps` param is its loss history's length (or where it diverged),
    and no two runs hold the same content."""
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    runs = cell_runs(root)
    for run in runs:
        last = max(m.step for m in client.get_metric_history(run.info.run_id, "loss"))
        stop = run.data.metrics.get("diverged_step")
        assert (stop if stop is not None else last + 1) == int(run.data.params["steps"])
    keys = [r.data.tags["content_key"] for r in runs]
    assert len(keys) == len(set(keys))


@pytest.mark.slow
def test_publish_after_a_failed_experiment_publishes_what_was_trained(
    tmp_path: Path, raw_params: dict
) -> None:
    """exp run (steps 60), a failed exp run (steps 100 left in params.yaml), make publish:
    no new run, every run's steps matches its history; a cell added but not trained is
    named in one note, not a traceback."""
    root = copy_project(tmp_path / "p")
    write_params(root / "params.yaml", small_grid(raw_params))
    subprocess.run(["git", "commit", "-qam", "small grid"], cwd=root, check=True)
    dvc(root, "exp", "run", "-S", "train.optimizers.adam.lr=0.2", "-S", "train.steps=60")
    failed = dvc(
        root, "exp", "run", "-S", "train.steps=100", "-S", "train.optimizers.sgd.lr=-1", check=False
    )
    said = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "train.optimizers.sgd.lr = -1" in said
    assert "`git checkout HEAD -- params.yaml` restores the committed values" in said
    left = params.read_yaml(root / "params.yaml")
    assert left["train"]["steps"] == 100  # type: ignore[index]  # DVC's behaviour
    left["train"]["optimizers"]["sgd"]["lr"] = 0.05  # type: ignore[index]  # the user fixes lr
    write_params(root / "params.yaml", left)  # type: ignore[arg-type]

    run = dvc(root, "repro", "--force", "--single-item", "publish")  # what `make publish` runs

    assert "0 new cell runs, 8 already there" in run.stdout
    (note,) = [line for line in run.stderr.splitlines() if line.startswith("note:")]
    assert "stage train is stale" in note and "published what was trained" in note
    assert_runs_match_their_histories(root)
    assert {r.data.params["steps"] for r in cell_runs(root)} == {"60"}
    left["train"]["grid"]["losses"] = ["mse", "l1", "huber"]  # type: ignore[index]
    write_params(root / "params.yaml", left)  # type: ignore[arg-type]

    again = dvc(root, "repro", "--force", "--single-item", "publish")

    assert "Traceback" not in again.stderr and "not trained: huber-sgd-none" in again.stderr
    assert len(cell_runs(root)) == 8


# --- wrong numbers never reach MLflow (issue 21) ----------------------------------------------
def test_a_trace_changed_after_training_is_refused_before_anything_is_sent(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One number of a trace replaced by a valid but wrong one (999.0): publish exits 2
    with one line naming the trace, its digest against the manifest's and `make heal`;
    no store is created (it published `loss [(0, 999.0)]` under the genuine key)."""
    root = tmp_path / "p"
    shutil.copytree(project, root)
    trace_csv = root / "traces/mse-sgd-none.csv"
    lines = trace_csv.read_text().splitlines()
    cells = lines[1].split(",")
    cells[1] = "999.0"  # the loss at step 0
    trace_csv.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")

    with pytest.raises(SystemExit) as exit_:
        publish.main(publish_argv(root))

    (line,) = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and line.startswith(f"error: {trace_csv}: sha256 ")
    assert "train's manifest records" in line and "`make heal`" in line
    assert not (root / "mlflow.db").exists()


def _wrong_grid_runs(root: Path, uri: str, tagged: bool) -> str:
    """What a publish that did not check its traces left: the grid's runs with one cell's
    loss at step 0 replaced by 999.0, under its genuine content key (without the payload
    tag, as before it existed, or with the tag of what it holds); that cell's key."""
    trained = Manifest.read(root / "traces")
    p = params.load(root / "params.yaml").publish
    contents = [
        grid_runs.cell_content(
            e, trained.data, root / "traces", root / "reports/plots", {}, p.points
        )
        for e in trained.entries
    ]
    first = contents[0]
    metrics = [(k, 999.0 if (k, s) == ("loss", 0) else v, s) for k, v, s in first.metrics]
    contents[0] = replace(first, metrics=metrics)
    store.publish(uri, p.experiment, contents, store.RunContent("old", "old-parent"), root)
    client = MlflowClient(uri)
    if not tagged:
        for run in client.search_runs([client.get_experiment_by_name(p.experiment).experiment_id]):
            client.delete_tag(run.info.run_id, PAYLOAD_TAG)
    return first.key


@pytest.mark.parametrize("tagged", [False, True], ids=["published-before-payload-tags", "tagged"])
def test_a_wrong_run_under_a_genuine_key_is_replaced_by_the_right_one(
    project: Path, tmp_path: Path, tagged: bool
) -> None:
    """A FINISHED run whose loss history is not its trace's (999.0 at step 0) under the
    cell's genuine key: the next publish replaces it (deleted, tagged with why, one line
    saying so) with a run holding the trace's numbers; every key then has exactly one
    FINISHED run (publish said "0 new cell runs, 8 already there" and kept it for good)."""
    root = tmp_path / "p"
    shutil.copytree(project, root)
    uri = f"sqlite:///{root}/mlflow.db"
    key = _wrong_grid_runs(root, uri, tagged)
    out = publishing.GridOutputs(
        root / "reports/env.json", root / "traces", root / "reports/compare.md",
        root / "reports/plots",
        [root / "reports/cells.csv", *sorted((root / "reports/walkthrough").glob("*"))],
    )  # fmt: skip
    trained, _ = publishing.checked_grid(out)

    outcome, _ = publishing.publish_grid(
        out, trained, params.load(root / "params.yaml").publish, root, uri
    )

    assert (outcome.created, outcome.present, outcome.replaced) == (1, 7, 1)
    (note,) = outcome.notes
    assert (
        note.startswith("replaced run mse-sgd-none (")
        and "loss at step 0 is 999.0 in MLflow" in note
    )
    client = MlflowClient(uri)
    runs = cell_runs(root)
    assert sorted(r.data.tags["content_key"] for r in runs) == sorted(
        e.key(trained.data) for e in trained.entries
    )
    (right,) = [r for r in runs if r.data.tags["content_key"] == key]
    first = trace.read_frame(root / "traces/mse-sgd-none.csv")["loss"].iloc[0]
    assert client.get_metric_history(right.info.run_id, "loss")[0].value == float(first)
    gone = client.search_runs([right.info.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.data.tags["gradlab.replaced"][:25] for r in gone] == ["loss at step 0 is 999.0 i"]
