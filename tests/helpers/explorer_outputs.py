"""A small pipeline's outputs and its explorer page, made by the real stages (generate,
train, walkthrough, study, explorer) in a temporary folder: the `explorer_outputs`
fixture (pytest plugin, see conftest), built once per test session."""

import copy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, sandbox_env, write_params


def small(raw: dict) -> dict:
    """The committed params with a grid of 3 losses x 3 optimizers x 2 clips (60 steps) and
    a study of 2 scenarios x 2 losses x 4 optimizers x 2 clips (60 steps), one process."""
    data = copy.deepcopy(raw)
    data["env"]["workers"] = 1
    data["train"]["steps"] = 60
    data["train"]["grid"].update(
        losses=["mse", "huber", "l1"],
        optimizers=["sgd", "momentum", "adam"],
        clips=["none", "norm"],
    )
    data["study"].update(
        steps=60,
        scenarios=["tutorial", "noisy"],
        losses=["mse", "huber"],
        optimizers=["sgd", "momentum", "nesterov", "adam"],
        clips=["none", "norm"],
        lr={"low": 0.01, "high": 1.0, "per_decade": 2, "near_edge": [0.9]},
        stability={"steps": 100, "step": 0.05, "span": 0.1, "tol": 1.0e-4},
        classification={**data["study"]["classification"], "losses": ["ce"], "n": 12},
    )
    data["explorer"]["points"] = 12
    return data


@dataclass(frozen=True)
class Outputs:
    root: Path  # params.yaml, data/, traces/, reports/ as dvc.yaml lays them out
    page: Path  # reports/explorer.html

    def stage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m pipeline ARGS` in the project, with this folder's params."""
        return run(self.root, *args)


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline", args[0], "--params", str(root / "params.yaml")]
    return subprocess.run(
        [*command, *args[1:]], cwd=root, capture_output=True, text=True, env=sandbox_env(root)
    )


EXPLORER = (
    "explorer", "--traces", "traces", "--points", "data/points.csv",
    "--scenarios", "data/scenarios.csv", "--cells", "reports/study/cells.parquet",
    "--study-traces", "reports/study/traces.parquet",
    "--walkthrough", "reports/walkthrough/walkthrough.json", "--out", "reports/explorer.html",
)  # fmt: skip
STAGES = (
    ("generate", "--out", "data/points.csv", "--scenarios", "data/scenarios.csv",
     "--classes", "data/classes.csv"),
    ("train", "--data", "data/points.csv", "--traces", "traces", "--cells", "reports/cells.csv",
     "--metrics", "reports/metrics.json"),
    ("walkthrough", "--out", "reports/walkthrough"),
    ("study", "--scenarios", "data/scenarios.csv", "--points", "data/points.csv",
     "--classes", "data/classes.csv", "--cells", "reports/study/cells.parquet",
     "--traces", "reports/study/traces.parquet", "--class-cells", "reports/study/classes.parquet",
     "--tuned", "reports/study/tuned.csv", "--manifest", "reports/study/manifest.json"),
    EXPLORER,
)  # fmt: skip


@pytest.fixture(scope="session")
def explorer_outputs(tmp_path_factory: pytest.TempPathFactory, raw_params: dict) -> Outputs:
    """The small pipeline, each stage run as dvc.yaml runs it, with the pipeline package
    on the path (the stages run from the repository's source)."""
    root = tmp_path_factory.mktemp("explorer")
    for folder in ("data", "reports/study"):
        (root / folder).mkdir(parents=True)
    (root / "pipeline").symlink_to(ROOT / "pipeline")
    write_params(root / "params.yaml", small(raw_params))
    for stage in STAGES:
        done = run(root, *stage)
        assert done.returncode == 0, f"{stage[0]}: {done.stderr}"
    return Outputs(root, root / "reports/explorer.html")
