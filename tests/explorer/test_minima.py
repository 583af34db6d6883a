"""What the surface view draws beside a path (pipeline.explorer.minima): L1's set of
minimisers as a polygon, the minimiser elsewhere, and the Hessian's eigenvalues there."""

import numpy as np
import pytest

from pipeline.explorer import minima
from pipeline.study import stability


def l1(x: list[float], y: list[float], w: float, b: float) -> float:
    return float(np.abs(w * np.array(x) + b - np.array(y)).mean())


def test_l1s_set_of_minimisers_is_the_polygon_of_equal_least_loss() -> None:
    """On x = 1, 2, 3, 4 and y = 0, 1, 1, 0 (not unique: pipeline/losses/l1.py) every vertex
    has the least L1 loss, points inside the polygon too, and points just outside more."""
    x, y = [1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 1.0, 0.0]

    found = minima.minimum("l1", {}, x, y)

    best = l1(x, y, found.w, found.b)
    assert not found.unique and len(found.polygon) >= 3
    assert all(l1(x, y, w, b) == pytest.approx(best, abs=1e-12) for w, b in found.polygon)
    centre = np.mean(found.polygon, axis=0)
    assert l1(x, y, *centre) == pytest.approx(best, abs=1e-12)
    outside = centre + 1.01 * (np.array(found.polygon[0]) - centre)
    assert l1(x, y, *outside) > best + 1e-9


def test_a_unique_minimiser_has_no_polygon_and_the_hessians_eigenvalues() -> None:
    """MSE on the tutorial's points: (2, 0), unique, and the eigenvalues of (2/n) X^T X."""
    x, y = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]

    found = minima.minimum("mse", {}, x, y)

    h = stability.hessian("mse", {}, np.array(x), np.array(y), 2.0, 0.0)
    assert (found.w, found.b) == pytest.approx((2.0, 0.0), abs=1e-12)
    assert found.unique and found.polygon == []
    assert found.eigenvalues == pytest.approx(tuple(np.linalg.eigvalsh(h)), rel=1e-12)
