"""Drift check: this run's metrics of every cell against the committed baseline.

The baseline is reports/metrics.json and reports/env.json as committed in git (both are
`cache: false` DVC outputs), read with `git show REV:PATH`; the current values are the same
files in the working tree, e.g. after `dvc repro --force`. A number passes when
|new - old| <= abs + rel * |old| (params.yaml `drift`); null <-> number, a changed text, and
a metric or a cell on one side only are drift. (`dvc metrics diff` has no tolerance and no
failing exit code: DVC issue #10408.)

Exit 0: identical or within tolerance; 1: drift, or cells missing or new; 2: bad input.
Environment fields that differ are reported to explain drift; alone they do not fail.
"""

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import cast

from pipeline import atomic, params
from pipeline.drift_report import ABSENT, Absent, Change, Report, Value, markdown, terminal

EXIT_DRIFT = 1
Metrics = dict[str, dict[str, Value]]  # cell name -> record.summary() of that cell


def same(old: Value | Absent, new: Value | Absent) -> bool:
    """Bitwise equal: the same type and bits (-0.0 is not 0.0; NaN equals NaN)."""
    if isinstance(old, float) and isinstance(new, float):
        return old.hex() == new.hex()
    return type(old) is type(new) and old == new


def compare(baseline: Metrics, current: Metrics, tolerances: params.DriftParams) -> Report:
    """Every cell and metric of `current` checked against `baseline`."""
    changes = []
    for cell in sorted(baseline.keys() & current.keys()):
        old_cell, new_cell = baseline[cell], current[cell]
        for metric in sorted(old_cell.keys() | new_cell.keys()):
            old, new = old_cell.get(metric, ABSENT), new_cell.get(metric, ABSENT)
            if same(old, new):
                continue
            tol = tolerances.metrics.get(metric, tolerances.default)
            if isinstance(old, int | float) and isinstance(new, int | float):
                changes.append(
                    Change(cell, metric, old, new, new - old, tol.abs + tol.rel * abs(old))
                )
            else:  # null <-> number, a changed text, an absent metric
                changes.append(Change(cell, metric, old, new, None, None))
    return Report(
        tolerances=tolerances,
        compared=len(baseline.keys() & current.keys()),
        changes=changes,
        missing=sorted(baseline.keys() - current.keys()),
        new=sorted(current.keys() - baseline.keys()),
    )


def env_diff(old: dict[str, object], new: dict[str, object]) -> list[tuple[str, object, object]]:
    """(field, baseline, current) for each environment field that differs."""
    fields = sorted(old.keys() | new.keys())
    diff = [(f, old.get(f, ABSENT), new.get(f, ABSENT)) for f in fields]
    return [(f, a, b) for f, a, b in diff if a != b]


# --- reading the two sides --------------------------------------------------------------
class InputError(ValueError):
    """A baseline or current file that cannot be read; the message names it."""


def committed(path: Path, rev: str) -> str:
    """The text of `path` (relative to the working directory) as committed at `rev`."""
    spec = f"{rev}:./{os.path.relpath(path)}"
    try:
        run = subprocess.run(
            ["git", "show", spec], capture_output=True, text=True, encoding="utf-8"
        )
    except FileNotFoundError:
        raise InputError("git not found: the baseline is read from git") from None
    if run.returncode != 0:
        reason = (run.stderr.strip().splitlines() or [f"git exited with {run.returncode}"])[-1]
        raise InputError(f"no baseline {path} at {rev}: {reason}")
    return run.stdout


def _object(text: str, source: str) -> dict[str, object]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object")
    return data


def _metrics(text: str, source: str) -> Metrics:
    data = _object(text, source)
    for cell, values in data.items():
        if not isinstance(values, dict) or not all(
            isinstance(v, int | float | str | None) for v in values.values()
        ):
            raise InputError(f"{source}: cell {cell!r} is not an object of numbers, texts, nulls")
    return cast(Metrics, data)  # checked just above


def _current(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: not found (rebuild the study first: make rebuild)") from None


def load(metrics: Path, env: Path, rev: str, tolerances: params.DriftParams) -> Report:
    """The report for the working tree's `metrics` and `env` against their versions at `rev`."""
    old = _metrics(committed(metrics, rev), f"{metrics} at {rev}")
    new = _metrics(_current(metrics), str(metrics))
    known = {m for side in (old, new) for cell in side.values() for m in cell}
    if unknown := sorted(set(tolerances.metrics) - known):  # a typo would silently not apply
        names = ", ".join(f"drift.metrics.{name}" for name in unknown)
        raise InputError(f"params: {names}: no such metric; known: {', '.join(sorted(known))}")
    env_old = _object(committed(env, rev), f"{env} at {rev}")
    return replace(
        compare(old, new, tolerances), env=env_diff(env_old, _object(_current(env), str(env)))
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, default=Path("reports/metrics.json"))
    parser.add_argument("--env", type=Path, default=Path("reports/env.json"))
    parser.add_argument("--baseline-rev", default="HEAD", help="git revision of the baseline")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    try:
        report = load(args.metrics, args.env, args.baseline_rev, p.drift)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(params.EXIT_BAD_INPUT) from None
    print(terminal(report, args.baseline_rev))
    text = markdown(report, args.baseline_rev)
    if args.markdown:
        atomic.write_text(args.markdown, text)
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):  # set by GitHub Actions
        with open(summary, "a", encoding="utf-8") as f:
            f.write(text)
    if not report.ok:
        raise SystemExit(EXIT_DRIFT)


if __name__ == "__main__":
    main()
