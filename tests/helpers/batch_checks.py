"""What the batched engines (engine.py, classify.py) owe every cell, checked the same way."""

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np


def optimizer_settings(
    rng: np.random.Generator,
    optimizer: np.ndarray,
    max_norm: tuple[float, float],
    clip_value: tuple[float, float],
) -> dict[str, np.ndarray]:
    """Random per-cell optimizer and clipping settings, as both engines' Cells.of take them
    (optimizer: each cell's optimizer name), the clipping thresholds drawn uniformly from
    the given ranges."""
    n = len(optimizer)
    return {
        "momentum": np.where(
            optimizer == "nesterov", rng.uniform(0.1, 0.95, n), rng.choice([0.0, 0.9], n)
        ),
        "dampening": np.where(optimizer == "momentum", rng.choice([0.0, 0.2], n), 0.0),
        "weight_decay": rng.choice([0.0, 0.01], n),
        "beta1": rng.uniform(0.5, 0.95, n),
        "beta2": rng.choice([0.99, 0.999], n),
        "amsgrad": rng.integers(0, 2, n),
        "centered": rng.integers(0, 2, n),
        "lr_decay": rng.choice([0.0, 0.01], n),
        "initial_accumulator_value": rng.choice([0.0, 0.1], n),
        "max_norm": rng.uniform(*max_norm, n),
        "norm_type": rng.choice([2.0, math.inf, 1.5], n),
        "clip_value": rng.uniform(*clip_value, n),
    }  # fmt: skip


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
