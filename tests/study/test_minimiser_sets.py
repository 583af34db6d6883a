"""Oracle tests of the sets of minimisers: polygons known by hand, linear programming
(L1's minimisers are an LP's feasible set, so its support function is an LP's optimum)
and a dense grid of the loss."""

import numpy as np
import pytest
from scipy.optimize import linprog

from pipeline import polygon
from pipeline.losses import LOSSES
from pipeline.params import LossName
from pipeline.study import minimiser


def mean_loss(loss: LossName, kwargs: dict[str, float], w, b, x, y) -> np.ndarray:
    w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return LOSSES[loss].value(w[..., None] * x + b[..., None] - y, kwargs).mean(axis=-1)


def l1_support(x: np.ndarray, y: np.ndarray, direction: np.ndarray) -> float:
    """max direction . (w, b) over L1's minimisers, by two LPs over (w, b, t): first the
    minimum sum t with |w x_i + b - y_i| <= t_i, then the direction's maximum on it."""
    n = len(x)
    one, eye = np.ones((n, 1)), np.eye(n)
    a = np.block([[x[:, None], one, -eye], [-x[:, None], -one, -eye]])
    bound = np.concatenate([y, -y])
    free = [(None, None), (None, None)] + [(0, None)] * n
    least = linprog(np.r_[0, 0, np.ones(n)], A_ub=a, b_ub=bound, bounds=free, method="highs")
    a2 = np.vstack([a, np.r_[0, 0, np.ones(n)]])
    top = linprog(np.r_[-direction, np.zeros(n)], A_ub=a2, b_ub=np.r_[bound, least.fun + 1e-12],
                  bounds=free, method="highs")  # fmt: skip
    return -top.fun


def outliers(seed: int, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """20 points of y = 2x with small noise and a third shifted by 10: L1's minimisers
    often form a set there (in the study, a polygon 4.8 wide)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-2.0, 2.0, 20)
    y = 2 * x + rng.normal(0, noise, 20)
    y[rng.choice(20, 7, replace=False)] += 10.0
    return x, y


def test_l1_zigzag_set_is_the_hand_derived_quadrilateral() -> None:
    """x = 1..4, y = 0, 1, 1, 0: every line between the two middle points and the two
    outer ones is optimal; the corners are the lines through two data points with sum |d| = 2."""
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 1.0, 0.0])

    (found,) = minimiser.sets("l1", {}, x, y)

    want = np.array([[-0.5, 2.0], [0.0, 0.0], [0.5, -0.5], [0.0, 1.0]])
    assert sorted(map(tuple, found)) == sorted(map(tuple, want))
    assert polygon.hull(want).tolist() == found.tolist()  # counter-clockwise


def test_huber_flat_zone_set_is_the_square_of_its_linear_pieces() -> None:
    """x = -1, -1, 1, 1 and y = +-10: Huber (delta 1) is flat while every |d| >= 1, the
    square |b - w| <= 9, |b + w| <= 9."""
    x, y = np.array([-1.0, -1.0, 1.0, 1.0]), np.array([10.0, -10.0, 10.0, -10.0])

    (found,) = minimiser.sets("huber", {"delta": 1.0}, x, y)

    assert sorted(map(tuple, found)) == [(-9.0, 0.0), (0.0, -9.0), (0.0, 9.0), (9.0, 0.0)]


@pytest.mark.parametrize("seed", range(20))
def test_l1_set_support_equals_linear_programming(seed: int) -> None:
    """In 8 directions, the polygon's farthest vertex equals the LP's optimum over the
    minimisers (to 1e-9): the polygon is the set, no vertex missing or extra."""
    x, y = outliers(seed)
    (found,) = minimiser.sets("l1", {}, x, y)

    for angle in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        c = np.array([np.cos(angle), np.sin(angle)])
        assert (found @ c).max() == pytest.approx(l1_support(x, y, c), abs=1e-9)


def test_some_l1_sets_in_those_data_are_wide() -> None:
    """The LP test above is not vacuous: among its data sets, several have a set wider than
    the study's tol of 0.01."""
    widths = [polygon.width(minimiser.sets("l1", {}, *outliers(seed))[0]) for seed in range(40)]
    assert sum(w > 0.01 for w in widths) >= 3


@pytest.mark.parametrize(
    "loss, kwargs, noise",
    [("l1", {}, 0.1), ("smoothl1", {"beta": 0.05}, 0.5), ("huber", {"delta": 0.05}, 0.5)],
)
def test_every_vertex_is_a_minimiser_and_the_set_holds_a_dense_grids_minimisers(
    loss: LossName, kwargs: dict[str, float], noise: float
) -> None:
    """On data sets with a set: each vertex's loss equals the minimum (so, by convexity,
    the whole polygon is minimal), and every point of a 400 x 400 grid around it whose
    loss is the minimum (up to 1e-12 of it) lies in the polygon, up to 1% of the grid's
    step (a quadratic piece lets the loss rise by only 1e-13 over 1e-6 beyond an edge; a
    missing corner or edge would leave grid points out by a step or more)."""
    checked = 0
    for seed in range(60):
        x, y = outliers(seed, noise)  # kinks small against the noise: few points quadratic
        (found,) = minimiser.sets(loss, kwargs, x, y)
        if len(found) < 3:
            continue
        checked += 1
        values = mean_loss(loss, kwargs, found[:, 0], found[:, 1], x, y)
        best = values.min()
        np.testing.assert_allclose(values, best, rtol=1e-12)
        lo, hi = found.min(axis=0), found.max(axis=0)
        pad = 0.5 * (hi - lo) + 1e-3
        w, b = np.meshgrid(*(np.linspace(lo[k] - pad[k], hi[k] + pad[k], 400) for k in (0, 1)))
        at_min = mean_loss(loss, kwargs, w, b, x, y) <= best * (1 + 1e-12)
        dist = polygon.distance(np.stack([w, b], axis=-1), found)
        assert at_min.sum() > 100  # the grid sees the set
        step = float(np.max((2 * pad + hi - lo) / 399))
        assert (dist[at_min] <= 0.01 * step).all()
    assert checked >= 2


@pytest.mark.parametrize("loss, kwargs", [("mse", {}), ("l1", {}), ("huber", {"delta": 1.0})])
def test_unique_minimisers_are_single_points(loss: LossName, kwargs: dict[str, float]) -> None:
    """MSE, and L1 and Huber on clean data: one vertex, the solver's exact minimiser."""
    x = np.linspace(-2.0, 2.0, 20)
    (found,) = minimiser.sets(loss, kwargs, x, 2 * x)
    assert found.tolist() == [[2.0, 0.0]]
