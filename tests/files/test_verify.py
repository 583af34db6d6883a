"""DVC's cache and the stages' inputs checked against dvc.lock, with the real `dvc` on a
project copy: a cache entry damaged in place (its size and mtime kept, as a bit flip on
disk leaves it) is what DVC 3.67 restores silently, and puts in place of a fresh output."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.files import lock, verify
from tests.conftest import copy_project, sandbox_env, small_grid, write_params

pytestmark = pytest.mark.slow
CELLS = "reports/study/cells.parquet"


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        ["dvc", *args], cwd=root, capture_output=True, text=True,
        env=sandbox_env(root.parent), timeout=600,
    )  # fmt: skip
    assert not check or run.returncode == 0, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, raw_params: dict) -> Path:
    """A small project after one `dvc repro`: every output and its cache entry."""
    root = copy_project(tmp_path_factory.mktemp("built") / "p")
    write_params(root / "params.yaml", small_grid(raw_params))
    dvc(root, "repro")
    return root


def damage(root: Path, path: str) -> Path:
    """Zero 64 bytes inside the cache entry dvc.lock names for `path`, keeping its size and
    mtime (DVC's state then still vouches for it); the entry."""
    entry = lock.entry(lock.folder(root), lock.recorded(root)[path].md5)
    before = entry.stat()
    os.chmod(entry, 0o644)
    with entry.open("r+b") as f:
        f.seek(100)
        f.write(b"\0" * 64)
    os.utime(entry, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.chmod(entry, before.st_mode)
    return entry


def intact(root: Path, path: str) -> bool:
    return lock.md5(root / path) == lock.recorded(root)[path].md5


def test_a_damaged_cache_entry_never_replaces_a_fresh_output(project: Path) -> None:
    """`dvc repro --force` of the study with its cells' cache entry damaged: the stage
    removes the damaged entry, says so, and DVC keeps the fresh file (DVC put the damaged
    copy in its place)."""
    entry = damage(project, CELLS)

    run = dvc(project, "repro", "--force", "--single-item", "study")

    assert intact(project, CELLS) and lock.damaged(entry, entry.parent.name + entry.name) is None
    assert f"note: removed {entry.relative_to(project)}, a damaged DVC cache entry" in run.stderr


def test_an_output_dvc_would_restore_from_a_damaged_entry_is_rebuilt(project: Path) -> None:
    """The cells' entry damaged and the file removed: `dvc repro` rebuilds it instead of
    restoring the damaged copy (and `dvc status` calling it up to date)."""
    damage(project, CELLS)
    (project / CELLS).unlink()

    run = dvc(project, "repro")

    assert intact(project, CELLS), run.stdout + run.stderr
    assert "a damaged DVC cache entry of reports/study/cells.parquet" in run.stderr


def test_a_damaged_input_stops_a_stage_in_one_line_and_make_heal_mends_it(project: Path) -> None:
    """A damaged copy in the workspace (`dvc checkout` restored it): publish stops before
    reading it, one line naming the file, what differs and `make heal`, DVC's own error
    after it; `python -m pipeline heal` (what `make heal` runs first) removes the entry,
    rebuilds the study, and the file is what dvc.lock records."""
    damage(project, CELLS)
    (project / CELLS).unlink()
    dvc(project, "checkout", CELLS)
    assert not intact(project, CELLS)  # DVC's checkout, as issue 21 found it

    run = dvc(project, "repro", "--force", "--single-item", "publish", check=False)

    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode != 0 and len(errors) == 1, run.stderr
    assert errors[0].startswith(f"error: {CELLS}: md5 ") and "damaged copy" in errors[0]
    assert "`make heal`" in errors[0] and "ERROR: failed to reproduce 'publish'" in run.stderr
    assert "Traceback" not in run.stderr
    heal = subprocess.run(
        [sys.executable, "-m", "pipeline", "heal"], cwd=project, capture_output=True,
        text=True, env=sandbox_env(project.parent), timeout=600,
    )  # fmt: skip
    assert heal.returncode == 0, heal.stderr
    assert "a damaged DVC cache entry of reports/study/cells.parquet" in heal.stdout
    assert "rebuilt stage study" in heal.stdout and intact(project, CELLS)


def test_heal_leaves_an_intact_project_alone(project: Path) -> None:
    """Nothing damaged, nothing different: heal says so and runs no dvc command."""
    done = list(verify.heal(project, lambda args: pytest.fail(f"ran dvc {args}")))

    assert done == []
