"""`python -m pipeline STAGE`: the one entry point dvc.yaml's commands use."""

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import __main__ as entry
from tests.conftest import ROOT


def test_an_unknown_stage_is_refused_naming_the_allowed_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A misspelt stage exits 2 with one usage line listing every stage."""
    with pytest.raises(SystemExit) as exit_:
        entry.main(["trian"])

    (line,) = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and "'trian'" in line
    stages = (
        "analysis, compare, drift, env, explorer, generate, heal, prune, publish, study, train, "
        "walkthrough"
    )
    assert stages in line


def test_missing_modules_are_found_without_importing_them() -> None:
    """missing_modules names what this interpreter cannot import, and nothing it can."""
    assert entry.missing_modules(("json", "no_such_module_xyz")) == ["no_such_module_xyz"]
    assert entry.missing_modules() == []


def test_a_python_without_the_dependencies_says_so_in_one_line(tmp_path: Path) -> None:
    """A stage run by a bare Python (e.g. `.venv/bin/dvc repro` with the system `python` on
    PATH) exits 2 with one line naming the interpreter and the fix, no traceback."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)

    run = subprocess.run(
        [str(bare / "bin/python"), "-m", "pipeline", "env", "--out", str(tmp_path / "env.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )

    (line,) = run.stderr.splitlines()
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert str(bare / "bin/python") in line and "lacks gradlab's dependencies" in line
    assert "source .venv/bin/activate" in line and "make repro" in line
    assert not (tmp_path / "env.json").exists()


def test_a_full_disk_stops_a_stage_in_one_line_naming_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stage whose output meets a full disk exits 1 with one line naming the output and
    the space it needs, no traceback (analysis printed `OSError: [Errno 28]`)."""

    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "walkthrough"

    with pytest.raises(SystemExit) as exit_:
        entry.main(["walkthrough", "--params", str(ROOT / "params.yaml"), "--out", str(out)])

    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error")]
    assert exit_.value.code == entry.EXIT_DISK_FULL and line.startswith(
        f"error: no space left on the device of {out}/walkthrough.json (it needs about "
    )
    assert not out.exists() and list(tmp_path.iterdir()) == []
