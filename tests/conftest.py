"""Shared fixtures: the committed params, and a copy of the project for stage tests."""

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from ruamel.yaml import YAML

from pipeline import params
from pipeline.run import numerics

if TYPE_CHECKING:
    import pandas as pd

# The kernels torch may use are pinned before any test imports torch, as `python -m
# pipeline` pins them for every stage: the tests compute the bits the stages compute.
numerics.pin_kernels()

# fixtures: `scheduler` (a real Dask cluster), `browser` (Chromium, offline tabs),
# `tiny_study` (a small study, trained once), `sigint` (SIGINT delivered, or a skip),
# `explorer_outputs` (a small pipeline's outputs and its explorer page, made once)
pytest_plugins = (
    "tests.helpers.dask_cluster",
    "tests.helpers.browser",
    "tests.helpers.study_fixtures",
    "tests.helpers.signals",
    "tests.helpers.explorer_outputs",
)
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # mlflow, dvc and the stages' `python` come from this venv
PROJECT_FILES = (
    "pipeline",
    "params.yaml",
    "dvc.yaml",
    "env/dvc.yaml",
    ".dvc/config",
    ".dvc/plots",
    ".dvcignore",
    ".gitignore",
)


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No telemetry, and never the developer's own tracking server."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def raw_params() -> dict:
    """The committed params.yaml as plain data (copy before changing)."""
    return YAML(typ="safe").load((ROOT / "params.yaml").read_text())


@pytest.fixture
def committed(raw_params: dict) -> params.Params:
    return params.parse(copy.deepcopy(raw_params))


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    """A private copy of the module's `built` project (git, DVC cache, MLflow store)."""
    root = tmp_path / "project"
    shutil.copytree(built, root, symlinks=True)
    return root


def write_params(path: Path, data: dict) -> Path:
    YAML(typ="safe").dump(data, path)
    return path


def small_grid(data: dict, **grid: list) -> dict:
    """`data` with a small, fast grid (2 losses x 2 optimizers x 2 clips, 30 steps) and a
    tiny study (one scenario, 2 optimizers x 2 clips, a few lrs, 30 steps): seconds."""
    data = copy.deepcopy(data)
    data["train"]["steps"] = 30
    data["train"]["grid"].update(
        {"losses": ["mse", "l1"], "optimizers": ["sgd", "adam"], "clips": ["none", "norm"], **grid}
    )
    data["env"]["workers"] = 1
    data["study"].update(
        steps=30,
        scenarios=["noisy"],
        losses=["mse"],
        optimizers=["sgd", "adam"],
        clips=["none", "norm"],
        lr={"low": 0.01, "high": 1.0, "per_decade": 1, "near_edge": [0.9]},
        stability={"steps": 100, "step": 0.05, "span": 0.1, "tol": 1.0e-4},
        classification={**data["study"]["classification"], "losses": ["ce"]},
    )
    return data


def copy_project(dest: Path) -> Path:
    """A git repo at `dest` holding the project's source and config (no outputs)."""
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    identity = (["git", "config", "user.name", "t"], ["git", "config", "user.email", "t@t"])
    for cmd in (
        ["git", "init", "-q"],
        *identity,
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "init"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    return dest


def sandbox_env(tmp: Path, **extra: str) -> dict[str, str]:
    """An explicit environment whose homes, caches and temp files all live under `tmp`,
    with the venv first on PATH, telemetry off and no inherited MLFLOW_* settings."""
    home = tmp / "sandbox"
    dirs = {
        "HOME": home,
        "TMPDIR": home / "tmp",
        "XDG_CACHE_HOME": home / "cache",
        "XDG_CONFIG_HOME": home / "config",
        "MPLCONFIGDIR": home / "matplotlib",
        "DVC_SITE_CACHE_DIR": home / "dvc-site",  # else /var/tmp/dvc
        "DVC_GLOBAL_CONFIG_DIR": home / "dvc-global",
        "DVC_SYSTEM_CONFIG_DIR": home / "dvc-system",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        **{k: str(v) for k, v in dirs.items()},
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONUNBUFFERED": "1",  # stage lines arrive when they happen (timed tests)
        **extra,
    }


def cell_table(root: Path) -> "pd.DataFrame":
    """reports/cells.csv of a project: one row per trained cell."""
    import pandas as pd

    return pd.read_csv(root / "reports/cells.csv")


def cell_names(root: Path) -> list[str]:
    """The names of the cells stage train trained, in its order."""
    return list(cell_table(root)["cell"])


def missing(reason: str) -> NoReturn:
    """Skip for want of a system tool; in CI (CI=true), which installs them, fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI installs it via .ci/run)")
    pytest.skip(reason)
