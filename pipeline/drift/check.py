"""Drift check: this run's per-cell results against the committed baseline.

The baseline is reports/cells.csv and reports/env.json as committed in git (both are
`cache: false` DVC outputs), read with `git show REV:PATH`; the current values are the same
files in the working tree as the last `dvc repro` left them (it recomputes nothing: `make
rebuild` does). A number passes when
|new - old| <= abs + rel * |old| (params.yaml `drift`); empty <-> number, a changed text, and
a column or a cell on one side only are drift. (`dvc metrics diff` has no tolerance and no
failing exit code: DVC issue #10408.) What changed since the baseline in params.yaml, the
code and the environment (pipeline.drift.changes) is reported to explain drift; alone it
does not fail.
"""

import csv
import io
import itertools
import json
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from pipeline import params
from pipeline.drift import changes
from pipeline.drift.report import ABSENT, Absent, Change, Report, Value
from pipeline.files.inputs import InputError

Metrics = dict[str, dict[str, Value]]  # row key (cell name) -> column -> value
INT = re.compile(r"^-?\d+$")


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


# --- reading the two sides --------------------------------------------------------------
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


def value(text: str) -> Value:
    """A CSV field as written by pandas: empty is None, then int, float, else text."""
    if text == "":
        return None
    if INT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


KEYS = ("cell", "config", "column", "measure", "seeds")  # a first column naming its rows, or
LABELS = ("scenario", "loss", "optimizer", "clip", "versus")  # its leading labels, joined


def read_table(text: str, source: str) -> Metrics:
    """{row name: {column: value}} of a CSV table whose first column (KEYS: `cell`,
    `config`, `column`, ...) names its rows, or whose leading label columns do together
    (`norm/adam/sgd` of clip, optimizer, versus); InputError otherwise."""
    reader = csv.DictReader(io.StringIO(text))
    fields = list(reader.fieldnames or [])
    keys = fields[:1] if fields[:1] and fields[0] in KEYS else []
    keys = keys or list(itertools.takewhile(LABELS.__contains__, fields))
    if not keys:
        raise InputError(
            f"{source}: no column {', '.join(map(repr, KEYS))} first, nor labels "
            f"({', '.join(LABELS)}); is it a gradlab per-row table?"
        )
    return {
        "/".join(row[k] for k in keys): {c: value(v) for c, v in row.items() if c not in keys}
        for row in reader
    }


def _current(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: not found (rebuild the study first: make rebuild)") from None


def _rows(tables: Sequence[Path], text: Callable[[Path], str], side: str) -> Metrics:
    """Every row of every table, keyed by its key column; rows of the tables after the
    first (the grid's cells) prefixed by the table's name: `summary:noisy-mse-sgd-none`."""
    rows: Metrics = {}
    for i, path in enumerate(tables):
        found = read_table(text(path), f"{path}{side}")
        rows |= {(k if i == 0 else f"{path.stem}:{k}"): v for k, v in found.items()}
    return rows


def _yaml(text: str, source: str) -> object:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe").load(text)
    except YAMLError as e:
        raise InputError(f"{source}: not valid YAML ({str(e).splitlines()[0]})") from None


def load(
    tables: Sequence[Path],
    env: Path,
    rev: str,
    tolerances: params.DriftParams,
    params_file: Path = Path("params.yaml"),
) -> Report:
    """The report for the working tree's `tables` (the grid's cells.csv first, then the
    study's summary and stability) and `env` against their versions at `rev`, with what
    changed since `rev` in `params_file`, the code and the environment."""
    old = _rows(tables, lambda t: committed(t, rev), f" at {rev}")
    new = _rows(tables, _current, "")
    known = {m for side in (old, new) for cell in side.values() for m in cell}
    if unknown := sorted(set(tolerances.metrics) - known):  # a typo would silently not apply
        names = ", ".join(f"drift.metrics.{name}" for name in unknown)
        raise InputError(f"params: {names}: no such metric; known: {', '.join(sorted(known))}")
    env_old = _object(committed(env, rev), f"{env} at {rev}")
    params_old = _yaml(committed(params_file, rev), f"{params_file} at {rev}")
    return replace(
        compare(old, new, tolerances),
        env=changes.values_diff(env_old, _object(_current(env), str(env))),
        params=changes.values_diff(params_old, _yaml(_current(params_file), str(params_file))),
        code=changes.code_diff(rev),
        tables=tuple(path.stem for path in tables),
    )
