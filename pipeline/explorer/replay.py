"""Runs the explorer trains again, with the study's batched engine (bit-identical to
torch.optim, pipeline.engine.regression), because their outputs keep no path: the study's
tuning cells of gradient descent, heavy ball and Nesterov without clipping (the rate map's
measured points, at every lr of the study's grid), and the tutorial's own run (the
walkthrough's seed and lr; its first step is all the walkthrough keeps).

Each replay is checked against what its stage recorded: a tuning cell's final (w, b)
against cells.parquet, the tutorial's first step against walkthrough.json, bit for bit; a
difference means those outputs are stale (or the engine changed) and stops the stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pipeline.engine import regression
from pipeline.engine.cells import COLUMNS, Cells
from pipeline.files.inputs import InputError

if TYPE_CHECKING:
    import pandas as pd

RATE_OPTIMIZERS = ("sgd", "momentum", "nesterov")  # those with a closed-form rate


@dataclass(frozen=True)
class Replayed:
    """The cells replayed, in the order given: every step of every cell."""

    initial: npt.NDArray[np.float64]  # (cells, 2): (weight, bias) before the first step
    trace: npt.NDArray[np.float32]  # (cells, steps, regression.TRACE): nan from a stop on
    final: npt.NDArray[np.float64]  # (cells, 2)
    diverged_step: npt.NDArray[np.int64]  # -1: ran every step


def train(
    cells: Cells, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], steps: int, dtype: str,
    batch_size: int = 0, engine: str = "exact",
) -> Replayed:  # fmt: skip
    """Every step of every cell (x, y: (data sets, n), cells.dataset their rows), by the
    engine that trained them (the study's `engine` column: its cells' bits are that one's)."""
    import torch

    from pipeline.engine.fused import regression as fused

    trainer = fused.train if engine == "fused" else regression.train
    r = trainer(
        cells, x, y, steps, getattr(torch, dtype), record=np.arange(len(cells)),
        batch_size=batch_size,
    )  # fmt: skip
    return Replayed(
        initial=np.stack([r.init_weight, r.init_bias], axis=1).astype(np.float64),
        trace=r.trace.astype(np.float32, copy=False),
        final=np.stack([r.final_weight, r.final_bias], axis=1).astype(np.float64),
        diverged_step=r.diverged_step.astype(np.int64),
    )


def rate_cells(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the study's cells table that the rate map measures: the tuning part's
    gradient descent, heavy ball and Nesterov, without clipping, on losses with curvature."""
    part = table[
        (table["part"] == "tune")
        & table["optimizer"].isin(RATE_OPTIMIZERS)
        & (table["clip"] == "none")
        & (table["loss"] != "l1")
    ]
    return part.reset_index(drop=True)


def cells_of(rows: pd.DataFrame, seeds: list[int]) -> Cells:
    """The engine's cells of these study rows (one scenario): their settings as recorded,
    dataset: the row of seeds (the scenario's data sets) each one's seed names."""
    settings = {k: rows[k].to_numpy() for k in COLUMNS if k in rows.columns}
    dataset = np.array([seeds.index(s) for s in rows["seed"].tolist()])
    return Cells.of(
        loss=rows["loss"].to_numpy(), optimizer=rows["optimizer"].to_numpy(),
        clip=rows["clip"].to_numpy(), seed=rows["seed"].to_numpy(), dataset=dataset, **settings,
    )  # fmt: skip


def check_finals(rows: pd.DataFrame, replayed: Replayed, what: str) -> None:
    """InputError unless every replayed final (w, b) is the recorded one, in float32 bits."""
    recorded = rows[["final_weight", "final_bias"]].to_numpy(np.float64).astype(np.float32)
    differ = np.flatnonzero((replayed.final.astype(np.float32) != recorded).any(axis=1))
    if len(differ):
        first = rows.iloc[int(differ[0])]
        raise InputError(
            f"{what}: {len(differ)} replayed cells end elsewhere than recorded (first: "
            f"{first['scenario']} {first['loss']} {first['optimizer']} lr {first['lr']} seed "
            f"{first['seed']}): the study's outputs are stale, run `dvc repro`"
        )


def check_tutorial(walkthrough: Mapping[str, object], replayed: Replayed, what: str) -> None:
    """InputError unless the tutorial run's start and first gradients are the walkthrough's
    (its seeded weights and autograd's .grad), bit for bit in float32."""
    initial, grad = walkthrough["initial"], walkthrough["grad"]
    want = [
        initial["linear.weight"][0], initial["linear.bias"][0],  # type: ignore[index]
        grad["linear.weight"][0], grad["linear.bias"][0],  # type: ignore[index]
    ]  # fmt: skip
    first = replayed.trace[0, 0]
    grads = [first[regression.TRACE.index(c)] for c in ("grad_weight", "grad_bias")]
    got = [*replayed.initial[0].tolist(), *grads]
    if np.array(want, dtype=np.float32).tolist() != np.array(got, dtype=np.float32).tolist():
        raise InputError(
            f"{what}: the tutorial's replayed first step {got} is not the walkthrough's {want}: "
            "run `dvc repro walkthrough`"
        )
