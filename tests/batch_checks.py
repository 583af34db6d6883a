"""What the batched engines (engine.py, classify.py) owe every cell, checked the same way."""

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np


def bits(result: Any) -> dict[str, np.ndarray]:
    """Every per-cell array of a result dataclass and its trace, as integers holding their
    bits."""
    arrays = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    return {k: v.view(np.int64 if v.dtype.itemsize == 8 else np.int32) for k, v in arrays.items()}


def assert_same_bits_alone_batched_or_permuted(
    train: Callable[[Any, Any], Any], cells: Any
) -> None:
    """`train(cells, record)` gives each cell the same bits in the whole batch, in a
    permuted batch and alone (12 of them), its trace of every step included; some cells
    diverge and some do not."""
    everyone = np.arange(len(cells))
    batch = bits(train(cells, everyone))
    order = np.random.default_rng(2).permutation(len(cells))
    permuted = bits(train(cells.take(order), everyone))
    back = np.argsort(order)
    for name, value in batch.items():
        assert np.array_equal(permuted[name][back], value), name
    assert (batch["diverged_step"] >= 0).any() and (batch["diverged_step"] < 0).any()
    for i in np.random.default_rng(3).choice(len(cells), 12, replace=False):
        alone = bits(train(cells.take([i]), [0]))
        for name, value in alone.items():
            assert np.array_equal(value[0], batch[name][i]), (i, name)
