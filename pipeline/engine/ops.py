"""torch's arithmetic as the batched engine replays it: the order in which torch sums a
row, the minibatch draws, and the per-cell columns and strided views the update rules use.

A value per cell is a tensor over cells (its last axis); each hyperparameter is such a
column. Three facts of torch's CPU kernels shape the engine (all checked by its tests):
- torch.sum adds a row's values in an order of its own (`sum_order` replays it), and
  nn.Linear's backward mm adds them in point order;
- torch.sqrt and torch.pow round differently from C's sqrt and pow, which vector_norm
  and Python's `beta ** step` use: numpy's sqrt and a strided tensor's pow are C's;
- torch's vectorised pow and hypot round differently from its scalar ones, so neither
  is used where a cell's position in the batch would pick one.
An op that is an exact identity for the cells that do not need it (x * 1, clamp at
+-inf, x / 1) stands in for a branch; where torch branches on a setting (`if momentum
!= 0`), cells are grouped by the branches they take and each group runs torch's branch.
torch is imported lazily: the optimizer modules that use these import this one, and every
stage imports those (pipeline.lazy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pipeline.lazy import np, torch

if TYPE_CHECKING:
    import numpy.typing as npt
    from torch import Tensor

    Ints = npt.NDArray[np.int64]
    Floats = npt.NDArray[np.float64]
    Bools = npt.NDArray[np.bool_]

Settings = Mapping[str, "Floats"]  # hyperparameter name -> one value per cell (flags 0/1)


def column(values: Floats, dtype: torch.dtype) -> Tensor:
    """One value per cell as a contiguous tensor of `dtype` (rounded from float64)."""
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(dtype)


def strided(values: Floats) -> Tensor:
    """A float64 copy of values whose elements are not adjacent (stride 2): torch runs its
    scalar kernels on it, which round as C does."""
    return torch.from_numpy(np.repeat(values[:, None], 2, axis=1))[:, 0]


Tree = int | tuple["Tree", "Tree"] | None  # a point's value, the sum of two trees, or 0


def _zeros(width: int) -> list[Tree]:
    return [None] * width


def _add(a: Tree, b: Tree) -> Tree:
    return b if a is None else a if b is None else (a, b)


def _lanes(a: Sequence[Tree], b: Sequence[Tree]) -> list[Tree]:
    return [_add(u, v) for u, v in zip(a, b, strict=True)]


def _multi_row_sum(rows: list[list[list[Tree]]], width: int) -> list[list[Tree]]:
    """ATen's multi_row_sum: four running sums, cascaded through four levels."""
    levels, power = 4, max(4, (len(rows) - 1).bit_length() // 4)
    acc: list[list[list[Tree]]] = [[_zeros(width) for _ in range(4)] for _ in range(levels)]
    i = 0
    while i + (1 << power) <= len(rows):
        for row in rows[i : i + (1 << power)]:
            acc[0] = [_lanes(a, r) for a, r in zip(acc[0], row, strict=True)]
        i += 1 << power
        for j in range(1, levels):
            acc[j] = [_lanes(a, b) for a, b in zip(acc[j], acc[j - 1], strict=True)]
            acc[j - 1] = [_zeros(width) for _ in range(4)]
            if i & (((1 << power) - 1) << (j * power)):
                break
    for row in rows[i:]:
        acc[0] = [_lanes(a, r) for a, r in zip(acc[0], row, strict=True)]
    for j in range(1, levels):
        acc[0] = [_lanes(a, b) for a, b in zip(acc[0], acc[j], strict=True)]
    return acc[0]


def _row_sum(items: list[list[Tree]], width: int) -> list[Tree]:
    """ATen's row_sum: items in groups of four summed apart, then the rest, then the four."""
    whole = len(items) // 4
    partial = _multi_row_sum([items[4 * r : 4 * r + 4] for r in range(whole)], width)
    for item in items[4 * whole :]:
        partial[0] = _lanes(partial[0], item)
    for k in range(1, 4):
        partial[0] = _lanes(partial[0], partial[k])
    return partial[0]


def sum_order(n: int, lanes: int) -> Tree:
    """The order of the adds with which torch sums n contiguous values, as a tree (ATen's
    cascade_sum in aten/src/ATen/native/cpu/SumKernel.cpp, `lanes` values to a vector):
    run as plain adds over cells, it gives each cell torch's sum of its points bit for bit
    (up to the sign of a zero), whatever the number of cells."""
    if n < lanes:
        return _row_sum([[i] for i in range(n)], 1)[0]
    whole, final = n // lanes, None
    vector = _row_sum([[v * lanes + k for k in range(lanes)] for v in range(whole)], lanes)
    for i in [*range(whole * lanes, n), *vector]:
        final = _add(final, i)
    return final


def evaluate(tree: Tree, rows: Tensor) -> Tensor:
    """The sum `tree` of rows[i], by torch.add; each row a tensor over cells."""
    if tree is None:
        return torch.zeros_like(rows[0])
    if isinstance(tree, int):
        return rows[tree]
    return torch.add(evaluate(tree[0], rows), evaluate(tree[1], rows))


def lanes(dtype: torch.dtype) -> int:
    """Values of `dtype` to one of the vectors torch's CPU kernels run on."""
    width = 64 if torch.backends.cpu.get_cpu_capability() == "AVX512" else 32
    return width // torch.empty(0, dtype=dtype).element_size()


def minibatch(seeds: Ints, step: int, size: int, n: int) -> Ints:
    """(size, cells): the points each cell's step `step` trains on, drawn uniformly with
    replacement by a counter-based generator (splitmix64 of seed, step and slot): a cell's
    draws depend on its seed and the step only, not on its batch-mates or the chunking,
    and cells of one seed see the same minibatches (common random numbers)."""
    slot = np.arange(size, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as splitmix64 intends
        z = seeds.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (
            z
            + np.uint64(step) * np.uint64(0xD1B54A32D192ED03)
            + slot * np.uint64(0x8CB92BA72F3D8DD7)
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n)).astype(np.int64)
