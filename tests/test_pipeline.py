"""The real `dvc repro` in a copy of the project: outputs, MLflow contract, idempotency."""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline.grid import trace
from tests.conftest import (
    BIN,
    ROOT,
    cell_names,
    cell_table,
    copy_project,
    sandbox_env,
    small_grid,
    write_params,
)

pytestmark = pytest.mark.slow


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    environ = sandbox_env(root.parent)  # DVC's site cache and homes inside tmp too
    run = subprocess.run(
        [f"{BIN}/dvc", *args], cwd=root, capture_output=True, text=True, env=environ, timeout=600
    )
    if check:
        assert run.returncode == 0, run.stdout + run.stderr
    return run


def runs(root: Path, status: str | None = "FINISHED", experiment: str = "gradlab") -> list:
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    found = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in found if status is None or r.info.status == status]


def cell_runs(root: Path) -> list:
    return [r for r in runs(root) if "mlflow.parentRunId" in r.data.tags]


def digests(root: Path) -> dict[str, str]:
    """sha256 of every DVC output file (traces, data, reports)."""
    files = [
        p
        for d in ("traces", "data", "reports")
        for p in sorted((root / d).rglob("*"))
        if p.is_file()
    ]
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
        if not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, raw_params: dict) -> Path:
    """A project copy with a 2x2x2 grid, 30 steps, after one `dvc repro`."""
    root = copy_project(tmp_path_factory.mktemp("built"))
    write_params(root / "params.yaml", small_grid(raw_params))
    dvc(root, "repro")
    return root


def test_repro_builds_every_stage_output(built: Path) -> None:
    """One `dvc repro` writes data, a trace per cell, the tables, comparison and walkthrough,
    and leaves DVC with nothing to do but its two always-run stages."""
    assert (built / "data/points.csv").read_text().splitlines() == [
        "x,y",
        "1.0,2.0",
        "2.0,4.0",
        "3.0,6.0",
    ]
    names = cell_names(built)
    assert len(names) == 8 and sorted(p.stem for p in (built / "traces").glob("*.csv")) == sorted(
        names
    )
    headline = json.loads((built / "reports/metrics.json").read_text())
    assert headline["cells"] == 8
    table = (built / "reports/compare.md").read_text()
    assert all(f"| {name} " in table for name in names)
    assert (built / "reports/walkthrough/walkthrough.json").exists()
    status = json.loads(dvc(built, "status", "--json").stdout)
    assert status == {"env/dvc.yaml:env": ["always changed"]}


def test_every_cell_lands_in_mlflow_with_the_contract(built: Path) -> None:
    """Each cell is one FINISHED run under one parent, with params, tags, histories, artifacts."""
    cells = cell_runs(built)
    (parent,) = [r for r in runs(built) if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.info.run_name for r in cells) == sorted(cell_names(built))
    run = next(r for r in cells if r.info.run_name == "mse-adam-norm")
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert {
        "loss",
        "optimizer",
        "clip",
        "seed",
        "steps",
        "lr",
        "betas",
        "max_norm",
        "norm_type",
    } <= set(run.data.params)
    assert (run.data.params["loss"], run.data.params["optimizer"], run.data.params["clip"]) == (
        "mse",
        "adam",
        "norm",
    )
    assert {"git_commit", "git_dirty", "torch_version", "data_hash", "content_key"} <= set(
        run.data.tags
    )
    assert {"final_loss", "final_weight", "final_bias", "dist_to_optimum"} <= set(run.data.metrics)
    client = MlflowClient(f"sqlite:///{built}/mlflow.db")
    for series in (
        "loss",
        "grad_norm",
        "grad_weight",
        "grad_bias",
        "clipped_grad_weight",
        "clipped_grad_bias",
        "weight",
        "bias",
    ):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, series)]
        assert steps == trace.history_steps(30, 30) == list(range(30)), series  # 30 points
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {
        "mse-adam-norm.csv",
        "mse-adam-norm.png",
        "explorer.html",  # opens the explorer on this cell
    }
    assert run.data.tags["explorer"] == "reports/explorer.html#cell=mse-adam-norm"
    link = client.download_artifacts(run.info.run_id, "explorer.html", str(built.parent))
    page = (built / "reports/explorer.html").resolve().as_uri()
    assert f'content="0; url={page}#cell=mse-adam-norm"' in Path(link).read_text()
    assert {"compare.md", "explorer.html"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)
    }
    row = cell_table(built).set_index("cell").loc["mse-adam-norm"]
    assert run.data.metrics["final_weight"] == row["final_weight"]  # exact: the same float


def test_second_repro_is_a_noop_that_adds_no_runs(project: Path) -> None:
    """A second `dvc repro` re-runs nothing but env (publish too has nothing new), and
    `make publish` (forced) then finds every run there."""
    before = len(runs(project, None))
    out = dvc(project, "repro").stdout
    assert "Running stage 'train'" not in out and "Running stage 'publish'" not in out
    forced = dvc(project, "repro", "--force", "--single-item", "publish").stdout
    assert "0 new cell runs, 8 already there" in forced
    assert len(runs(project, None)) == before


def test_forced_repro_is_bitwise_identical_and_adds_no_runs(project: Path) -> None:
    """`dvc repro --force` recomputes identical bytes everywhere and publishes nothing new."""
    before, count = digests(project), len(runs(project, None))
    dvc(project, "repro", "--force")
    assert digests(project) == before
    assert len(runs(project, None)) == count


def test_deleted_mlflow_db_is_filled_again_by_dvc_repro_without_retraining(project: Path) -> None:
    """Deleting mlflow.db and running plain `dvc repro` brings back every cell's run and
    every study run, without retraining (the env stage finds the store lacking what
    publish's receipt names); the next `dvc repro` publishes nothing."""
    study = len(runs(project, None, "gradlab-study"))
    for store in project.glob("mlflow.db*"):
        store.unlink()

    back = dvc(project, "repro")

    assert "lacks 9 of the 9 runs of 'gradlab'" in back.stderr
    assert "Running stage 'train'" not in back.stdout and "Running stage 'study'" not in back.stdout
    assert len(cell_runs(project)) == 8 and len(runs(project, None, "gradlab-study")) == study
    assert "Running stage 'publish'" not in dvc(project, "repro").stdout


def test_an_experiment_on_the_grid_alone_adds_no_study_runs(
    project: Path, raw_params: dict
) -> None:
    """Another grid leaves the study's numbers as they were: publish adds no study run (its
    runs' keys follow what they are made of, not every file of the study)."""
    before = len(runs(project, None, "gradlab-study"))
    write_params(project / "params.yaml", small_grid(raw_params, clips=["none", "handnorm"]))

    out = dvc(project, "repro").stdout

    assert "Running stage 'publish'" in out
    assert "study: 0 new configuration runs" in out
    assert len(runs(project, "FINISHED", "gradlab-study")) <= before + 1  # at most a new parent


def test_changed_cell_gets_new_runs_and_run_cache_restore_adds_none(
    project: Path, raw_params: dict
) -> None:
    """A new adam lr adds runs for the adam cells only; going back restores from the run cache
    (no training) and adds nothing, as those runs exist."""
    data = small_grid(raw_params)
    data["train"]["optimizers"]["adam"]["lr"] = 0.2
    write_params(project / "params.yaml", data)
    dvc(project, "repro")
    new = [r for r in cell_runs(project)]
    assert len(new) == 12 and sum(r.data.params["lr"] == "0.2" for r in new) == 4
    write_params(project / "params.yaml", small_grid(raw_params))
    out = dvc(project, "repro").stdout
    assert "Stage 'train' is cached - skipping run" in out
    assert len(cell_runs(project)) == 12


def test_a_fresh_clone_reproduces_the_committed_outputs_with_a_clean_git_status(
    tmp_path: Path,
) -> None:
    """`git clone` + `dvc repro` of the committed pipeline recomputes every tracked file to
    its committed bytes: git status stays clean and no run is tagged git_dirty=true. On a
    machine whose environment fingerprint differs from the committed one (another CPU
    vendor: pipeline.run.numerics), the numbers may differ, and only then: what changes is
    the fingerprint, DVC's locks and the pipeline's outputs, nothing else."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)

    dvc(clone, "repro")

    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout
    committed = subprocess.run(
        ["git", "show", "HEAD:reports/env.json"], cwd=clone, capture_output=True, text=True
    ).stdout
    if json.loads(committed) == json.loads((clone / "reports/env.json").read_text()):
        assert status == ""
        assert {r.data.tags["git_dirty"] for r in runs(clone)} == {"false"}
    else:
        changed = {line[3:] for line in status.splitlines()}
        outputs = {"dvc.lock", "env/dvc.lock"}
        assert "reports/env.json" in changed
        assert all(p in outputs or p.startswith("reports/") for p in changed), changed
