"""The measures against a target, in both engines, against a brute-force scan of every
step's (w, b): the first touch, the sustained step, the share within tol and the largest
distance from the first touch on, the final distance; a target that is a set of
minimisers (a polygon) measured by its exact distance (pipeline.polygon)."""

import numpy as np
import pytest
import torch

from pipeline import polygon
from pipeline.engine import regression, target
from pipeline.engine.cells import Cells
from pipeline.engine.fused import regression as fused
from pipeline.study import minimiser

ENGINES = {"exact": regression.train, "fused": fused.train}
STEPS = 300


def scan(r: regression.Result, aim: np.ndarray, tol: np.ndarray) -> dict[str, np.ndarray]:
    """The measures from the full trace: the distance after each kept step (and at the
    start), scanned step by step in plain Python."""
    found: dict[str, list[float]] = {k: [] for k in ("reached", "sustained", "share", "excursion")}
    for c in range(len(tol)):
        kept = int(r.steps_run[c])
        path = [(float(r.init_weight[c]), float(r.init_bias[c]))]
        path += [tuple(map(float, r.trace[c, t, -2:])) for t in range(kept)]
        own = aim[c][np.r_[True, (np.diff(aim[c], axis=0) != 0).any(axis=1)]]  # no padding
        d = polygon.distance(np.array(path), own.astype(np.float32).astype(np.float64))
        within = d <= float(np.float32(tol[c]))
        first = next((t for t, w in enumerate(within) if w), None)
        found["reached"].append(-1 if first is None else first)
        sustained = next((t for t in range(len(within)) if within[t:].all()), None)
        stays = kept == STEPS and sustained is not None
        found["sustained"].append(sustained if stays else -1)
        found["share"].append(np.nan if first is None else within[first:].mean())
        found["excursion"].append(np.nan if first is None else d[first:].max())
    return {k: np.array(v) for k, v in found.items()}


def cells_and_data() -> tuple[Cells, np.ndarray, np.ndarray, np.ndarray]:
    """L1 and MSE cells of SGD, Adam and clipped SGD at lrs from creeping to diverging, on a
    data set whose L1 minimisers form a polygon (x = 0, 0, 1, 1 and y = 0, 1, 0, 1: b and
    w + b anywhere in [0, 1], a parallelogram), and their targets: the polygon for L1, the
    point for MSE."""
    x = np.array([[0.0, 0.0, 1.0, 1.0]])
    y = np.array([[0.0, 1.0, 0.0, 1.0]])
    sets = {loss: minimiser.sets(loss, {}, x, y)[0] for loss in ("l1", "mse")}
    assert len(sets["l1"]) >= 3 and len(sets["mse"]) == 1  # a polygon, a point
    rng = np.random.default_rng(3)
    n = 160
    loss = rng.choice(["l1", "mse"], n)
    cells = Cells.of(
        loss=loss,
        optimizer=rng.choice(["sgd", "momentum", "adam"], n),
        clip=rng.choice(["none", "norm"], n),
        lr=10 ** rng.uniform(-2.5, 0.7, n),
        seed=rng.integers(0, 50, n),
        dataset=np.zeros(n, dtype=np.int64),
        max_norm=np.full(n, 0.5),
        norm_type=np.full(n, 2.0),
    )
    aims = polygon.padded([sets[str(q)] for q in loss])
    return cells, x, y, aims


@pytest.mark.parametrize("engine", ENGINES)
def test_the_measures_are_a_scan_of_every_step(engine: str) -> None:
    """First touch, sustained step, share within tol and excursion from the first touch
    on, and the final distance: a scan of the full trace with the exact polygon distance."""
    cells, x, y, aims = cells_and_data()
    tol = np.full(len(cells), 0.05)

    r = ENGINES[engine](cells, x, y, STEPS, record=np.arange(len(cells)), target=aims, tol=tol)
    want = scan(r, aims, tol)

    np.testing.assert_array_equal(r.steps_to_target, want["reached"])
    np.testing.assert_array_equal(r.steps_sustained, want["sustained"])
    np.testing.assert_allclose(r.touch_share, want["share"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.excursion, want["excursion"], rtol=1e-5, atol=1e-9)  # a point: f32
    final = np.stack([r.final_weight, r.final_bias], axis=1).astype(np.float64)
    rounded = aims.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(r.target_error, polygon.distances(final, rounded), atol=1e-12)
    # the scan is not vacuous: cells that touch and leave, stay, never arrive, diverge
    assert (want["share"] < 1).any() and (want["share"] == 1).any()
    assert (want["reached"] < 0).any() and (r.diverged_step >= 0).any()
    inside_l1 = (cells.names("loss") == "l1") & (r.target_error == 0)
    assert inside_l1.any()  # L1 cells ending inside the set, not at a vertex


def test_both_engines_measure_alike_bit_for_bit_on_gradient_descent() -> None:
    """SGD and momentum cells: the fused engine's measures are the exact engine's bits."""
    cells, x, y, aims = cells_and_data()
    keep = np.flatnonzero(np.isin(cells.names("optimizer"), ["sgd", "momentum"]))
    cells, aims = cells.take(keep), aims[keep]
    given = {"target": aims, "tol": 0.05}

    a, b = regression.train(cells, x, y, STEPS, **given), fused.train(cells, x, y, STEPS, **given)

    for name in ("steps_to_target", "steps_sustained", "touch_share", "excursion", "target_error"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), name)


def test_a_point_target_given_as_one_pair_or_per_cell_or_padded_measures_the_same() -> None:
    """target (2,), (cells, 2) and (cells, 1, 2) are one target: the same measures."""
    cells, x, y, _ = cells_and_data()
    forms = [np.array([0.3, 0.1]), np.tile([0.3, 0.1], (len(cells), 1)),
             np.tile([0.3, 0.1], (len(cells), 1, 1))]  # fmt: skip

    got = [fused.train(cells, x, y, 50, torch.float64, target=t, tol=0.2) for t in forms]

    for r in got[1:]:
        np.testing.assert_array_equal(r.steps_sustained, got[0].steps_sustained)
        np.testing.assert_array_equal(r.excursion, got[0].excursion)


def test_vertices_counts_a_padded_polygons_own_vertices() -> None:
    """A point, a segment and a pentagon padded to 5 vertices: 1, 2 and 5."""
    shapes = [[[0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]], [[0, 0], [1, 0], [2, 1], [1, 2], [0, 1]]]
    assert target.vertices(polygon.padded(shapes)).tolist() == [1, 2, 5]
