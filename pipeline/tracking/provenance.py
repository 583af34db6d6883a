"""What every gradlab run is tagged with: the commit it came from (and whether the work
tree was dirty), torch's version, the environment fingerprint and the machine."""

import json
import subprocess
from importlib.metadata import version
from pathlib import Path

from pipeline.run import machine


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
