"""Convex polygons in the (w, b) plane: a loss's set of minimisers, and the exact
Euclidean distance of points to it.

A polygon is a (vertices, 2) float64 array in counter-clockwise order: one vertex is a
point, two a segment. Packed, several polygons share one (total, 2) array and a start
offset per polygon (`pack`), the form the engines take.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.lazy import np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    Array = npt.NDArray[np.float64]
    Ints = npt.NDArray[np.int64]


def hull(points: npt.ArrayLike, merge: float = 0.0) -> Array:
    """The convex hull of points (k, 2), counter-clockwise from the lowest (w, b), by
    Andrew's monotone chain; points closer than `merge` to a kept one are dropped, and
    points on an edge are not vertices."""
    p = np.unique(np.asarray(points, dtype=np.float64).reshape(-1, 2), axis=0)  # sorted
    if merge > 0 and len(p) > 1:
        kept = [p[0]]
        for q in p[1:]:
            if min(np.hypot(*(q - k)) for k in kept) > merge:
                kept.append(q)
        p = np.array(kept)
    if len(p) <= 2:
        return p

    def chain(seq: Array) -> list[Array]:
        out: list[Array] = []
        for q in seq:
            while len(out) >= 2 and _cross(out[-2], out[-1], q) <= 0:
                out.pop()
            out.append(q)
        return out[:-1]

    return np.array(chain(p) + chain(p[::-1]))


def _cross(o: Array, a: Array, b: Array) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def distance(points: npt.ArrayLike, vertices: npt.ArrayLike) -> Array:
    """The Euclidean distance of each point (..., 2) to the convex polygon `vertices`
    (counter-clockwise; one vertex: a point, two: a segment): 0 inside, else the distance
    to the nearest edge."""
    p = np.asarray(points, dtype=np.float64)
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 2)
    a, b = v, np.roll(v, -1, axis=0)  # edge k: a[k] -> b[k] (a point: a zero-length edge)
    d = p[..., None, :] - a  # (..., edges, 2)
    e = b - a
    length2 = (e * e).sum(axis=-1)
    t = np.clip(np.divide((d * e).sum(axis=-1), length2, out=np.zeros_like(d[..., 0]),
                          where=length2 > 0), 0.0, 1.0)  # fmt: skip
    gap = d - t[..., None] * e
    nearest = np.sqrt((gap * gap).sum(axis=-1)).min(axis=-1)
    if len(v) < 3:
        return nearest
    inside = (e[:, 0] * d[..., 1] - e[:, 1] * d[..., 0] >= 0).all(axis=-1)
    return np.where(inside, 0.0, nearest)


def distances(points: npt.ArrayLike, polygons: npt.ArrayLike) -> Array:
    """Each point (m, 2)'s distance to its own convex polygon (m, V, 2), padded by
    repeating its last vertex (a repeated vertex adds zero-length edges: no change)."""
    p = np.asarray(points, dtype=np.float64)[:, None, :]
    a = np.asarray(polygons, dtype=np.float64)
    e = np.roll(a, -1, axis=1) - a  # edge k: a[k] -> a[k + 1], the last back to a[0]
    d = p - a
    length2 = (e * e).sum(axis=-1)
    t = np.clip(np.divide((d * e).sum(axis=-1), length2, out=np.zeros_like(length2),
                          where=length2 > 0), 0.0, 1.0)  # fmt: skip
    gap = d - t[..., None] * e
    nearest = np.sqrt((gap * gap).sum(axis=-1)).min(axis=-1)
    area = (length2 > 0).sum(axis=1) >= 3  # three distinct edges or more: a polygon
    inside = (e[..., 0] * d[..., 1] - e[..., 1] * d[..., 0] >= 0).all(axis=-1)
    return np.where(area & inside, 0.0, nearest)


def padded(polygons: Sequence[npt.ArrayLike], most: int = 1) -> Array:
    """Polygons as one (count, V, 2) array, V the most vertices (at least `most`), each
    padded by repeating its last vertex."""
    arrays = [np.asarray(q, dtype=np.float64).reshape(-1, 2) for q in polygons]
    most = max([most, *(len(q) for q in arrays)])
    rows = [np.concatenate([q, np.repeat(q[-1:], most - len(q), axis=0)]) for q in arrays]
    return np.stack(rows) if rows else np.empty((0, most, 2))


def widen(polygons: Array, most: int) -> Array:
    """Padded polygons (count, V, 2) padded on to `most` >= V vertices."""
    extra = np.repeat(polygons[:, -1:], most - polygons.shape[1], axis=1)
    return np.concatenate([polygons, extra], axis=1)


def stacked(groups: Sequence[Array]) -> Array:
    """Groups of padded polygons as one, padded to the group with the most vertices."""
    most = max((g.shape[1] for g in groups), default=1)
    return np.concatenate([widen(g, most) for g in groups]) if groups else np.empty((0, 1, 2))


def widths(polygons: npt.ArrayLike) -> Array:
    """Each padded polygon (count, V, 2)'s diameter (a point's: 0)."""
    v = np.asarray(polygons, dtype=np.float64)
    if v.shape[1] == 1:
        return np.zeros(len(v))
    gaps = v[:, :, None, :] - v[:, None, :, :]
    return np.sqrt((gaps * gaps).sum(axis=-1)).max(axis=(1, 2))


def width(vertices: npt.ArrayLike) -> float:
    """The polygon's diameter: the largest distance between two of its vertices."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 2)
    return float(np.hypot(*(v[:, None] - v[None]).transpose(2, 0, 1)).max())


def pack(polygons: Sequence[npt.ArrayLike]) -> tuple[Array, Ints]:
    """(vertices (total, 2), start (polygons + 1,)): polygon i is
    vertices[start[i]:start[i + 1]]."""
    arrays = [np.asarray(q, dtype=np.float64).reshape(-1, 2) for q in polygons]
    start = np.cumsum([0, *(len(q) for q in arrays)]).astype(np.int64)
    return (np.concatenate(arrays) if arrays else np.empty((0, 2))), start
