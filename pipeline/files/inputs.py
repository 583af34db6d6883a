"""Reading what earlier stages wrote, with errors that name the file and the stage to rerun.

Every problem is an InputError; `or_exit` turns it into one line per problem and exit 2.
"""

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pipeline.files.message import EXIT_BAD_INPUT, cut, shown

if TYPE_CHECKING:
    import pandas as pd

# What a data file's column holds (read_data): a finite number, a whole number >= 0 (a
# seed, a point's index), a class label (0 or 1), or a name
Kind = Literal["number", "index", "label", "name"]
RULES = {
    "number": "is not a finite number",
    "index": "is not a whole number >= 0",
    "label": "is not a class label (0 or 1)",
    "name": "is empty",
}


class InputError(ValueError):
    """An input file is missing, unreadable or inconsistent; the message says which."""


@contextmanager
def or_exit() -> Iterator[None]:
    """Run the block; on InputError print its lines as errors and exit 2."""
    try:
        yield
    except InputError as e:
        print("\n".join(f"error: {line}" for line in str(e).splitlines()), file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None


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


def read_table(
    path: Path, stage: str, filters: list[tuple[str, str, str]] | None = None
) -> "pd.DataFrame":
    """A parquet or CSV table written by `stage` (a parquet one: its rows that pass
    `filters`); InputError if missing, or unreadable (a parquet file without its footer, a
    broken CSV): the format's own checks."""
    import pandas as pd

    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path, filters=filters)
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (run `dvc repro {stage}`)") from None
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(
            f"{path}: not a readable {path.suffix.lstrip('.')} table ({cut(str(e), 120)}): "
            f"`make heal` restores or rebuilds it (stage {stage})"
        ) from None


def read_data(path: Path, columns: Mapping[str, Kind], stage: str) -> "pd.DataFrame":
    """The data file at `path` (CSV with a header), its `columns` typed: numbers float64,
    indices and labels int64. InputError naming the file and, for a bad value, its line,
    column and value; a missing file names `dvc repro <stage>`."""
    import numpy as np
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (run `dvc repro {stage}`)") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file; expected a header {','.join(columns)}") from None
    except pd.errors.ParserError as e:
        raise InputError(f"{path}: not a CSV table ({shown(str(e), 120)})") from None
    if missing := [c for c in columns if c not in frame.columns]:
        found = shown(list(map(str, frame.columns)))
        raise InputError(f"{path}: missing column {', '.join(missing)}; found: {found}")
    if frame.empty:
        raise InputError(f"{path}: no data rows; expected rows of {','.join(columns)}")
    out = {}
    for name, kind in columns.items():
        text = frame[name]
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if kind == "index":
            bad |= (values < 0) | (values != np.round(values))
        elif kind == "label":
            bad |= (values != 0) & (values != 1)
        elif kind == "name":
            bad = (text.str.strip() == "").to_numpy()
        if (rows := np.flatnonzero(bad)).size:
            row = int(rows[0])  # line 1 is the header
            raw = shown(text.iloc[row])
            raise InputError(f"{path}: line {row + 2}, column {name}: {raw} {RULES[kind]}")
        out[name] = (
            text if kind == "name" else values.astype(np.float64 if kind == "number" else np.int64)
        )
    return pd.DataFrame(out)
