"""Oracle tests of the polygon geometry: scipy's convex hull and Delaunay point location,
and distances to densely sampled edges."""

import numpy as np
import pytest
from scipy.spatial import ConvexHull, Delaunay

from pipeline import polygon


def random_polygon(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return polygon.hull(rng.normal(0, 1, (int(rng.integers(3, 15)), 2)))


@pytest.mark.parametrize("seed", range(10))
def test_hull_equals_scipys_counter_clockwise(seed: int) -> None:
    """The same vertices as scipy's ConvexHull, counter-clockwise (positive area)."""
    points = np.random.default_rng(seed).normal(0, 1, (30, 2))
    found = polygon.hull(points)
    want = points[ConvexHull(points).vertices]
    assert sorted(map(tuple, found)) == sorted(map(tuple, want))
    x, y = found[:, 0], found[:, 1]
    assert (x * np.roll(y, -1) - np.roll(x, -1) * y).sum() > 0


def test_hull_drops_points_on_edges_and_near_duplicates() -> None:
    square = [[0, 0], [1, 0], [1, 1], [0, 1]]
    found = polygon.hull([*square, [0.5, 0], [1, 1 + 1e-15], [0.5, 0.5]], merge=1e-12)
    assert sorted(map(tuple, found)) == sorted(map(tuple, np.array(square, dtype=float)))


@pytest.mark.parametrize("seed", range(10))
def test_distance_equals_dense_sampling_and_delaunay_inside(seed: int) -> None:
    """0 exactly for points Delaunay locates inside; else the nearest of 2,000 samples
    per edge, to within a sample's spacing."""
    v = random_polygon(seed)
    points = np.random.default_rng(100 + seed).normal(0, 2, (200, 2))
    found = polygon.distance(points, v)

    inside = Delaunay(v).find_simplex(points) >= 0
    assert (found[inside] == 0).all()
    t = np.linspace(0, 1, 2_001)[:, None, None]
    samples = (v + t * (np.roll(v, -1, axis=0) - v)).reshape(-1, 2)
    brute = np.hypot(*(points[:, None] - samples[None]).transpose(2, 0, 1)).min(axis=1)
    spacing = np.hypot(*(np.roll(v, -1, axis=0) - v).T).max() / 2_000
    assert np.abs(found[~inside] - brute[~inside]).max() <= spacing
    assert (found[~inside] > 0).all()


def test_distance_to_a_point_and_to_a_segment() -> None:
    """One vertex: Euclidean distance; two: the segment's (ends included)."""
    p = np.array([[3.0, 4.0], [0.5, 1.0], [-1.0, 0.0]])
    assert polygon.distance(p, [[0.0, 0.0]]).tolist() == [5.0, np.hypot(0.5, 1.0), 1.0]
    assert polygon.distance(p, [[0.0, 0.0], [1.0, 0.0]]).tolist() == [np.hypot(2.0, 4.0), 1.0, 1.0]


def test_width_and_pack() -> None:
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert polygon.width(square) == pytest.approx(np.sqrt(2))
    assert polygon.width([[2.0, 0.0]]) == 0.0
    vertices, start = polygon.pack([square, [[2.0, 0.0]]])
    assert start.tolist() == [0, 4, 5] and vertices[4].tolist() == [2.0, 0.0]
