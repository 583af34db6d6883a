"""Grid cells: one loss x optimizer x clipping rule x seed, with every setting it needs.

A cell's name (`mse-adam-norm`, plus `-s<seed>` when the grid has several seeds) is its
MLflow run name, its trace file name and its row in reports/cells.csv.
"""

import itertools
from dataclasses import asdict, dataclass
from typing import Literal, Self, cast

from pipeline.clips import CLIPS
from pipeline.params import ClipName, LossName, OptimizerName, TrainParams

Scalar = float | bool | str | list[float]
DType = Literal["float32", "float64"]


@dataclass(frozen=True)
class Cell:
    name: str
    loss: LossName
    optimizer: OptimizerName
    clip: ClipName
    seed: int
    steps: int
    dtype: DType
    loss_kwargs: dict[str, Scalar]
    optimizer_kwargs: dict[str, Scalar]
    clip_kwargs: dict[str, Scalar]

    def settings(self) -> dict[str, Scalar | int]:
        """Every setting of the cell, flat: the MLflow params (names are an API)."""
        return {
            "loss": self.loss,
            "optimizer": self.optimizer,
            "clip": self.clip,
            "seed": self.seed,
            "steps": self.steps,
            "dtype": self.dtype,
            **self.loss_kwargs,
            **self.optimizer_kwargs,
            **self.clip_kwargs,
        }

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Self:
        """The cell `to_json` gave (KeyError/TypeError when it is not one)."""
        return cls(**data)  # type: ignore[arg-type]  # checked by the manifest's reader


def _clip_kwargs(p: TrainParams, clip: ClipName) -> dict[str, Scalar]:
    section = CLIPS[clip].section  # the thresholds of its section (handnorm's are norm's)
    return dict(getattr(p.clips, section).model_dump()) if section else {}


def cell(
    p: TrainParams, loss: LossName, optimizer: OptimizerName, clip: ClipName, seed: int, name: str
) -> Cell:
    """One cell of `loss`, `optimizer` and `clip` with their settings in params."""
    return Cell(
        name=name,
        loss=loss,
        optimizer=optimizer,
        clip=clip,
        seed=seed,
        steps=p.steps,
        dtype=cast(DType, p.dtype),
        loss_kwargs=dict(getattr(p.losses, loss).model_dump()),
        optimizer_kwargs=dict(getattr(p.optimizers, optimizer).model_dump()),
        clip_kwargs=_clip_kwargs(p, clip),
    )


def cells(p: TrainParams) -> list[Cell]:
    """Every cell of the grid, in the order of the lists in params.yaml."""
    g = p.grid
    several_seeds = len(set(g.seeds)) > 1
    product = itertools.product(
        dict.fromkeys(g.losses),
        dict.fromkeys(g.optimizers),
        dict.fromkeys(g.clips),
        dict.fromkeys(g.seeds),
    )  # dict.fromkeys: a name listed twice is one cell
    return [
        cell(
            p,
            loss,
            opt,
            clip,
            seed,
            f"{loss}-{opt}-{clip}" + (f"-s{seed}" if several_seeds else ""),
        )
        for loss, opt, clip, seed in product
    ]
