"""The compare stage's inputs: each cell's trace, the metrics file and env.json, read and checked.

Every problem is an InputError whose message names the file or cell and, where a file is
missing, the stage that writes it; `pipeline.compare` turns it into exit code 2.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from pipeline import grid, record

Summary = Mapping[str, float | int | str | None]  # one cell's entry of the metrics file


class InputError(ValueError):
    """A cell of the grid has no trace or no metrics entry, or an input is unreadable."""


def check(
    cells: Sequence[grid.Cell], traces: Mapping[str, object], metrics: Mapping[str, object]
) -> None:
    """InputError naming every cell of the grid that lacks a trace or a metrics entry."""
    problems = [f"cell {c.name}: no trace" for c in cells if c.name not in traces]
    problems += [f"cell {c.name}: no metrics entry" for c in cells if c.name not in metrics]
    if problems:
        raise InputError("\n".join(problems))


def read_traces(cells: Sequence[grid.Cell], folder: Path) -> dict[str, pd.DataFrame]:
    """Each cell's trace; InputError naming every missing file."""
    paths = {c.name: folder / f"{c.name}.csv" for c in cells}
    missing = [
        f"cell {name}: no trace {path} (run `dvc repro train`)"
        for name, path in paths.items()
        if not path.is_file()
    ]
    if missing:
        raise InputError("\n".join(missing))
    return {name: record.read_frame(path) for name, path in paths.items()}


def read_json(path: Path, stage: str) -> object:
    """The JSON document at `path`, written by `stage`; InputError if missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (run `dvc repro {stage}`)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON: {e}") from None


def read_metrics(path: Path) -> dict[str, Summary]:
    """The metrics file: {cell name: {metric: value}}; InputError if unreadable."""
    data = read_json(path, "train")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(f"{path}: expected {{cell name: {{metric: value}}}}")
    return data


def read_env(path: Path) -> dict[str, object]:
    """The env stage's fingerprint: {field: value}; InputError if unreadable."""
    data = read_json(path, "env")
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected {{field: value}}")
    return data
