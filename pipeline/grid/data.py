"""The data: the points a preset describes, and the points file read back with checks.

The `generate` stage writes the points; `train` and `compare` read them. A points file
has a header `x,y` and one row per point, every value a finite number.
"""

from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline import params
from pipeline.files import inputs

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


def read_points(path: Path) -> tuple[Array, Array]:
    """x and y as float64 arrays; InputError naming the file, line, column and value."""
    frame = inputs.read_data(path, {"x": "number", "y": "number"}, "generate")
    return frame["x"].to_numpy(), frame["y"].to_numpy()


def read_points_or_exit(path: Path) -> tuple[Array, Array]:
    with inputs.or_exit():
        return read_points(path)
