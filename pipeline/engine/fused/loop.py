"""What every fused kernel does around its model's forward: clip, update, check, count.

Compiled helpers shared by the regression and classification kernels, and the chains
that pick a block's clipping form and update rule (pipeline.engine.fused.compile.chain).
A step mirrors pipeline.engine.loop.Training.step: the model's loss and gradients, the
L2 norm before clipping, the clipped gradients, the rule's new parameters; a cell whose
loss, gradient or new parameter is not finite stops there and keeps its parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipeline.engine import rules
from pipeline.engine.clipping import FORMS
from pipeline.engine.fused.compile import chain, jit, member

Array = Any  # a numpy array inside compiled code


def _identity(g: Array, l2: Array, cd: Array, out: Array, k: int) -> None:
    """No clipping: the gradients as they are."""
    for r in range(g.shape[0]):
        for c in range(k):
            out[r, c] = g[r, c]


def _refuse(*args: Array) -> None:  # a member without a fused form: blocks.missing refuses
    raise ValueError("no fused form")  # its cells before any kernel runs


CLIP = chain(
    [jit(_identity, "always")] + [member(f.FUSED.apply if f.FUSED else _refuse) for f in FORMS],
    arity=5,
)
UPDATE = chain([member(r.FUSED.update if r.FUSED else _refuse) for r in rules.RULES], arity=9)


def forwards(forms: Sequence[Any], forward_of: Callable[[Any], Any], arity: int) -> Any:
    """A model's forward per loss code, chained: `forward_of` the loss's compiled fused
    point, or a refusal where it has no fused form (blocks.missing refuses its cells)."""
    return chain(
        [forward_of(member(f.point, "always")) if f else jit(_refuse) for f in forms], arity=arity
    )


def _tree_sums(u: Array, v: Array, program: Array, k: int) -> None:
    """u[root, :k] and v[root, :k]: the sums of their leaves u[:n], v[:n], in `program`'s
    order (rows: node, left, right; torch's order, pipeline.engine.ops.sum_order)."""
    for j in range(program.shape[0]):
        node, left, right = program[j, 0], program[j, 1], program[j, 2]
        for c in range(k):
            u[node, c] = u[left, c] + u[right, c]
            v[node, c] = v[left, c] + v[right, c]


tree_sums = jit(_tree_sums, "always")


def program(tree: object, n: int) -> tuple[np.ndarray, int]:
    """A sum tree (pipeline.engine.ops.sum_order) of n leaves as rows (node, left, right),
    nodes numbered from n on in the order they are computed; and the root's row."""
    found: list[tuple[int, int, int]] = []

    def walk(t: object) -> int:
        if isinstance(t, int):
            return t
        assert isinstance(t, tuple)
        left, right = walk(t[0]), walk(t[1])
        found.append((n + len(found), left, right))
        return found[-1][0]

    root = walk(tree)
    return np.array(found, dtype=np.int64).reshape(-1, 3), root


def _finite(x: float) -> bool:
    return x - x == 0  # inf - inf and nan - nan are nan


finite = jit(_finite, "always")


def _minibatch_index(seed: int, step: int, slot: int, n: int) -> int:
    """pipeline.engine.ops.minibatch for one cell, step and slot: splitmix64, then mod n."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    z = z + np.uint64(step) * np.uint64(0xD1B54A32D192ED03)
    z = z + np.uint64(slot) * np.uint64(0x8CB92BA72F3D8DD7)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return int(z % np.uint64(n))


minibatch_index = jit(_minibatch_index, "always")


def _settle(
    loss: Array, g: Array, gc: Array, new: Array, l2: Array, p: Array, alive: Array,
    kept: Array, clips: Array, top: Array, flag: Array, bad: Array, one: Any, k: int,
) -> None:  # fmt: skip
    """After the update, per cell: kept if it was alive and its loss, gradients and new
    parameters are finite (then p takes them), else stopped for good; its steps kept and
    clipped, its largest L2 norm; flag: 1 where clipping changed a gradient. One loop per
    row, each over cells: they vectorise."""
    zero = one - one
    for c in range(k):
        bad[c] = loss[c] - loss[c]  # 0 where finite; inf - inf and nan - nan are nan
        flag[c] = zero
    for r in range(g.shape[0]):
        for c in range(k):
            bad[c] += (g[r, c] - g[r, c]) + (new[r, c] - new[r, c])
            flag[c] = one if gc[r, c] != g[r, c] else flag[c]
    for c in range(k):
        ok = alive[c] & (bad[c] == zero)
        kept[c] += ok
        clips[c] += ok & (flag[c] == one)
        top[c] = max(top[c], l2[c] if ok else zero)
        alive[c] = ok
    for r in range(g.shape[0]):
        for c in range(k):
            p[r, c] = new[r, c] if alive[c] else p[r, c]


settle = jit(_settle, "always")


def _load(rows: Array, block: Array, a: int, k: int, lanes: int) -> None:
    """The block's columns a .. a + k - 1 of rows; spare lanes (up to `lanes`) repeat a."""
    for r in range(rows.shape[0]):
        for c in range(lanes):
            block[r, c] = rows[r, a + c if c < k else a]


load = jit(_load, "always")
