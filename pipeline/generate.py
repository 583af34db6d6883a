"""Stage `generate`: the dataset y = slope * x + intercept (+ Gaussian noise) as CSV."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import atomic, params

TUTORIAL_X = (1.0, 2.0, 3.0)  # the tutorial's inputs; its targets are 2x


def points(p: params.GenerateParams) -> pd.DataFrame:
    """Columns x and y, float64; the tutorial preset is exactly x = 1, 2, 3 and y = 2x."""
    if p.preset == "tutorial":
        x = np.array(TUTORIAL_X)
        return pd.DataFrame({"x": x, "y": 2.0 * x})
    x = np.linspace(p.x_min, p.x_max, p.n)
    noise = np.random.default_rng(p.seed).normal(0.0, p.noise, p.n) if p.noise else 0.0
    return pd.DataFrame({"x": x, "y": p.slope * x + p.intercept + noise})


def optimum(p: params.GenerateParams) -> tuple[float, float]:
    """The (weight, bias) the data was drawn from."""
    return (2.0, 0.0) if p.preset == "tutorial" else (p.slope, p.intercept)


class DataError(ValueError):
    """The points file is unusable; the message names the file, line and column."""


def read_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """x and y as float64 arrays; DataError on a missing column, no rows or a bad cell."""
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


def read_points_or_exit(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        return read_points(path)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(params.EXIT_BAD_INPUT) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    with atomic.replacing(args.out) as tmp:
        points(p.generate).to_csv(tmp, index=False)


if __name__ == "__main__":
    main()
