"""Reading what earlier stages wrote, with errors that name the file and the stage to rerun.

Every problem is an InputError; `or_exit` turns it into one line per problem and exit 2.
"""

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import params

if TYPE_CHECKING:
    import pandas as pd


class InputError(ValueError):
    """An input file is missing, unreadable or inconsistent; the message says which."""


@contextmanager
def or_exit() -> Iterator[None]:
    """Run the block; on InputError print its lines as errors and exit 2."""
    try:
        yield
    except InputError as e:
        print("\n".join(f"error: {line}" for line in str(e).splitlines()), file=sys.stderr)
        raise SystemExit(params.EXIT_BAD_INPUT) from None


def read_json(path: Path, stage: str) -> object:
    """The JSON document at `path`, written by `stage`; InputError if missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (run `dvc repro {stage}`)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON: {e}") from None


def read_env(path: Path) -> dict[str, object]:
    """The env stage's fingerprint: {field: value}; InputError if unreadable."""
    data = read_json(path, "env")
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected {{field: value}}")
    return data


def read_traces(folder: Path, names: Sequence[str]) -> dict[str, "pd.DataFrame"]:
    """The trace of each named cell; InputError naming every missing file."""
    from pipeline.grid import trace

    paths = {name: folder / f"{name}.csv" for name in names}
    missing = [
        f"cell {name}: no trace {path} (run `dvc repro train`)"
        for name, path in paths.items()
        if not path.is_file()
    ]
    if missing:
        raise InputError("\n".join(missing))
    return {name: trace.read_frame(path) for name, path in paths.items()}


def read_table(path: Path, stage: str) -> "pd.DataFrame":
    """A parquet or CSV table written by `stage`; InputError if missing."""
    import pandas as pd

    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (run `dvc repro {stage}`)") from None
