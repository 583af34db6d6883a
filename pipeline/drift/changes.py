"""What changed since the baseline, said before any number: params.yaml's values, the code
and configuration git tracks, and the environment fingerprint. Drift that follows an
intended change reads differently from drift that follows none."""

import subprocess
from collections.abc import Mapping

from pipeline.drift.report import ABSENT, Absent
from pipeline.files.inputs import InputError

# What decides the numbers besides params.yaml and the environment: the code, the stages'
# commands and the pinned packages
CODE = ("pipeline", "dvc.yaml", "env/dvc.yaml", "requirements.txt")

Difference = tuple[str, object, object]  # (name, baseline, current)


def flat(data: object, prefix: str = "") -> dict[str, object]:
    """A nested mapping as {dotted key: leaf value}; lists are leaves."""
    if not isinstance(data, Mapping):
        return {prefix: data}
    out: dict[str, object] = {}
    for key, value in data.items():
        out |= flat(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def values_diff(old: object, new: object) -> list[Difference]:
    """(dotted key, baseline, current) for each leaf of two documents that differs."""
    a, b = flat(old), flat(new)
    both: list[tuple[str, object | Absent, object | Absent]] = [
        (k, a.get(k, ABSENT), b.get(k, ABSENT)) for k in sorted(a.keys() | b.keys())
    ]
    return [(k, x, y) for k, x, y in both if x != y]


def code_diff(rev: str, paths: tuple[str, ...] = CODE) -> list[str]:
    """The files under `paths` that differ between `rev` and the working tree (untracked
    files included), as git names them."""
    try:
        changed = subprocess.run(
            ["git", "diff", "--name-only", rev, "--", *paths], capture_output=True, text=True
        )
        untracked = subprocess.run(
            ["git", "ls-files", "--others", "--exclude-standard", "--", *paths],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise InputError("git not found: the baseline is read from git") from None
    if changed.returncode != 0:
        reason = (changed.stderr.strip().splitlines() or ["git diff failed"])[-1]
        raise InputError(f"cannot compare the code with {rev}: {reason}")
    return sorted({*changed.stdout.split(), *untracked.stdout.split()})
