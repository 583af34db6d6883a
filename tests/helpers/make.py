"""A copy of the project that `make` runs in (the Makefile, the tools it calls, a .venv),
and `make` itself; and the README's commands, taken from it as written."""

import shutil
import subprocess
from pathlib import Path

from tests.conftest import BIN, ROOT, copy_project, missing, sandbox_env

MAKE_FILES = (
    "Makefile",
    "requirements.txt",
    "tools/repro.py",
    "tools/ui.py",
    "tools/exps.py",
)


def make_project(dest: Path) -> Path:
    """copy_project plus what make needs: the Makefile, requirements.txt, the tools it
    calls, and .venv: this interpreter's, as a link (the way a worktree shares one)."""
    if shutil.which("make") is None:
        missing("make is not installed")
    copy_project(dest)
    for name in MAKE_FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    cksum = subprocess.run(
        ["cksum"], input=(dest / "requirements.txt").read_bytes(), capture_output=True, check=True
    )
    if not (BIN.parent / f".installed-{cksum.stdout.split()[0].decode()}").exists():
        missing(f"{BIN.parent} is not marked installed: run `make setup` first")  # else make would
    (dest / ".venv").symlink_to(BIN.parent)
    return dest


def make(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return shell(root, " ".join(["make", *args]), **env)


def shell(root: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`command` run by bash in `root`, as a user types it, with the venv on PATH."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=root,
        env=sandbox_env(root.parent, **env),
        capture_output=True,
        text=True,
        timeout=900,
    )


def readme_line(marker: str) -> str:
    """The command of the README line holding `marker`, without its comment."""
    (line,) = [ln for ln in (ROOT / "README.md").read_text().splitlines() if marker in ln]
    return line.split("  #")[0].strip()
