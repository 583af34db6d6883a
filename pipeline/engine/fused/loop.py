"""What every fused kernel does around its model's forward: clip, update, check, count.

Compiled helpers shared by the regression and classification kernels, and the chains
that pick a block's clipping form and update rule (pipeline.engine.fused.compile.chain).
A step mirrors pipeline.engine.loop.Training.step: the model's loss and gradients, the
L2 norm before clipping, the clipped gradients, the rule's new parameters; a cell whose
loss, gradient or new parameter is not finite stops there and keeps its parameters.
"""

from __future__ import annotations

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
    [jit(_identity, "always")]
    + [member(f.FUSED.apply if f.FUSED else _refuse, "always") for f in FORMS],
    arity=5,
)
UPDATE = chain(
    [member(r.FUSED.update if r.FUSED else _refuse, "always") for r in rules.RULES], arity=9
)


@jit
def tree_sum(w: Array, program: Array, root: int, k: int) -> None:
    """w[root, :k] = the sum of the leaves w[:n], in `program`'s order (rows: node,
    left, right; torch's order, pipeline.engine.ops.sum_order)."""
    for j in range(program.shape[0]):
        node, left, right = program[j, 0], program[j, 1], program[j, 2]
        for c in range(k):
            w[node, c] = w[left, c] + w[right, c]


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


@jit
def finite(x: float) -> bool:
    return x - x == 0  # inf - inf and nan - nan are nan


@jit
def minibatch_index(seed: int, step: int, slot: int, n: int) -> int:
    """pipeline.engine.ops.minibatch for one cell, step and slot: splitmix64, then mod n."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    z = z + np.uint64(step) * np.uint64(0xD1B54A32D192ED03)
    z = z + np.uint64(slot) * np.uint64(0x8CB92BA72F3D8DD7)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return int(z % np.uint64(n))
