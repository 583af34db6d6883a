"""The data: the points a preset describes, and the points file read back with checks.

The `generate` stage writes the points; `train` and `compare` read them. A points file
has a header `x,y` and one row per point, every value a finite number.
"""

import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline import params

Array = npt.NDArray[np.float64]
TUTORIAL_X = (1.0, 2.0, 3.0)  # the tutorial's inputs; its targets are 2x
TUTORIAL_LINE = (2.0, 0.0)  # y = 2x: (slope, intercept)


def points(p: params.GenerateParams) -> tuple[Array, Array]:
    """x and y, float64; the tutorial preset is exactly x = 1, 2, 3 and y = 2x."""
    if isinstance(p, params.TutorialData):
        x = np.array(TUTORIAL_X)
        return x, TUTORIAL_LINE[0] * x
    x = np.linspace(p.x_min, p.x_max, p.n)
    noise = np.random.default_rng(p.seed).normal(0.0, p.noise, p.n) if p.noise else 0.0
    return x, p.slope * x + p.intercept + noise


def generating_line(p: params.GenerateParams) -> tuple[float, float]:
    """The (weight, bias) the points were drawn from."""
    if isinstance(p, params.TutorialData):
        return TUTORIAL_LINE
    return p.slope, p.intercept


def to_csv(x: Array, y: Array) -> str:
    """The points file: header `x,y`, each value as its shortest exact decimal."""
    rows = (f"{float(a)!r},{float(b)!r}" for a, b in zip(x, y, strict=True))
    return "\n".join(["x,y", *rows]) + "\n"


class DataError(ValueError):
    """The points file is unusable; the message names the file, line and column."""


def read_points(path: Path) -> tuple[Array, Array]:
    """x and y as float64 arrays; DataError on a missing column, no rows or a bad cell."""
    import pandas as pd  # only the stages that read data pay for it

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (run `dvc repro generate`)") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file; expected a header `x,y` and rows") from None
    missing = [c for c in ("x", "y") if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns))
        raise DataError(f"{path}: missing column {', '.join(missing)}; found: {found}")
    if frame.empty:
        raise DataError(f"{path}: no data rows; expected at least one x,y row")
    columns = []
    for name in ("x", "y"):
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = int(bad[0])  # line 1 is the header
            raw = frame[name].iloc[row]
            raise DataError(
                f"{path}: line {row + 2}, column {name}: {raw!r} is not a finite number"
            )
        columns.append(values)
    return columns[0], columns[1]


def read_points_or_exit(path: Path) -> tuple[Array, Array]:
    try:
        return read_points(path)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(params.EXIT_BAD_INPUT) from None
