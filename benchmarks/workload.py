"""The speed workload every engine benchmark trains (the issue's, and the README's):

N cells cycling through 4 losses x 7 optimizers x 3 clipping modes (the default grid's
84, with their settings from params.yaml) x 26 log-spaced lrs from 1e-4 to 10; each cell
500 full-batch steps in float32, keeping its final parameters only; starts from the
engines' seeds (cell i: seed i mod 1000). Data: 20 points, x evenly on [-2, 2] and
y = 2x + Gaussian noise (sd 0.5, one draw per seed of 10), or the tutorial's 3 points.
"""

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STEPS = 500
LRS = np.logspace(-4, 1, 26)
SIZES = (10_000, 100_000)
POINTS = (20, 3)


def data(points: int) -> tuple[np.ndarray, np.ndarray]:
    """(datasets, points) x and y: ten noisy lines of 20 points, or the tutorial's."""
    if points == 3:
        return np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 4.0, 6.0]])
    x = np.tile(np.linspace(-2.0, 2.0, points), (10, 1))
    return x, 2.0 * x + np.random.default_rng(0).normal(0.0, 0.5, x.shape)


def table(n: int, points: int) -> dict[str, np.ndarray]:
    """The n cells as columns (names and settings), in the workload's cycle."""
    from pipeline import grid, params
    from pipeline.study.design import grid_cells

    base = grid_cells(grid.cells(params.load_or_exit(ROOT / "params.yaml").train))
    i = np.arange(n)
    cells = base.take(i % len(base))
    settings = {**cells.settings, "lr": LRS[(i // len(base)) % len(LRS)]}
    return {
        "loss": cells.names("loss"),
        "optimizer": cells.names("optimizer"),
        "clip": cells.names("clip"),
        "seed": i % 1000,
        "dataset": (i % 1000) % len(data(points)[0]),
        **settings,
    }


def cells(n: int, points: int):  # -> pipeline.engine.cells.Cells
    from pipeline.engine.cells import Cells

    return Cells.of(**table(n, points))
