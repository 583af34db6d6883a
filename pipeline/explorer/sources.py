"""The explorer's runs, read from what the pipeline wrote: the grid's traces (every step,
every value, the optimizer's state), the study's reporting cells at its tuned lrs (its
traced steps), and the replays (pipeline.explorer.replay); the data sets they trained on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.explorer import minima
from pipeline.explorer.pack import Run
from pipeline.grid.manifest import Manifest
from pipeline.losses import LOSSES

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

PATH_COLUMNS = ("weight", "bias")  # what the page keeps of a study cell's steps
KEYS = ["scenario", "loss", "optimizer", "clip", "lr", "seed"]  # a run's setting


@dataclass
class Datasets:
    """Distinct data sets, each once, in the order first seen."""

    found: dict[tuple[tuple[float, ...], tuple[float, ...]], int] = field(default_factory=dict)

    def add(self, x: npt.ArrayLike, y: npt.ArrayLike) -> int:
        """The index of data set (x, y), added if new."""
        key = (tuple(np.asarray(x, dtype=np.float64).tolist()), tuple(np.asarray(y).tolist()))
        return self.found.setdefault(key, len(self.found))  # type: ignore[arg-type]

    def xy(self, index: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return list(self.found)[index]

    def to_json(self) -> list[dict[str, list[float]]]:
        return [{"x": list(x), "y": list(y)} for x, y in self.found]


@dataclass
class Surfaces:
    """Each loss (with its parameter) on each data set a run trained on, once, with its
    minimum (pipeline.explorer.minima): what the surface view draws under a path."""

    datasets: Datasets
    found: dict[tuple[int, str, float], int] = field(default_factory=dict)
    minima: list[minima.Minimum] = field(default_factory=list)

    def add(self, dataset: int, loss: str, param: float = math.nan) -> int:
        """The index of `loss` (its parameter: `param`) on data set `dataset`."""
        key = (dataset, loss, param if LOSSES[loss].param else math.nan)
        if key not in self.found:
            kwargs = {str(LOSSES[loss].param): param} if LOSSES[loss].param else {}
            self.minima.append(minima.minimum(loss, kwargs, *self.datasets.xy(dataset)))
            self.found[key] = len(self.found)
        return self.found[key]

    def to_json(self) -> list[dict[str, object]]:
        return [
            {"dataset": d, "loss": loss, "param": None if math.isnan(v) else v, **m.to_json()}
            for (d, loss, v), m in zip(self.found, self.minima, strict=True)
        ]


def loss_param(loss: str, kwargs: dict) -> float:
    """The value of the loss's parameter (beta, delta) in its keyword arguments, or nan."""
    name = LOSSES[loss].param
    return float(kwargs[name]) if name else math.nan


def grid_runs(
    frames: dict[str, pd.DataFrame], trained: Manifest, scenario: str, dataset: int,
    surfaces: Surfaces,
) -> list[Run]:  # fmt: skip
    """Every trained cell of the grid, every step and column of its trace."""
    runs = []
    for e in trained.entries:
        frame = frames[e.cell.name]
        m = e.measures
        step = m["diverged_step"]
        param = loss_param(e.cell.loss, e.cell.loss_kwargs)
        runs.append(
            Run(
                kind="grid",
                scenario=scenario,
                loss=e.cell.loss,
                optimizer=e.cell.optimizer,
                clip=e.cell.clip,
                lr=float(e.cell.optimizer_kwargs["lr"]),  # type: ignore[arg-type]
                seed=e.cell.seed,
                dataset=dataset,
                surface=surfaces.add(dataset, e.cell.loss, param),
                initial=(float(m["init_weight"]), float(m["init_bias"])),  # type: ignore[arg-type]
                columns=tuple(frame.columns),
                values=frame.to_numpy(np.float32),
                name=e.cell.name,
                diverged_step=None if step is None else int(step),
            )
        )
    return runs


def spaced(steps: npt.ArrayLike, points: int) -> npt.NDArray[np.int64]:
    """About `points` of the sorted distinct `steps`, log-spaced by position (they are
    log-spaced themselves: the first ones every step), the first and last always."""
    s = np.unique(np.asarray(steps, dtype=np.int64))
    if len(s) <= points:
        return s
    at = np.unique(np.geomspace(1, len(s), points).round().astype(np.int64) - 1)
    return s[np.union1d(at, [0, len(s) - 1])]


def study_steps(traces: pd.DataFrame, points: int) -> npt.NDArray[np.int64]:
    """About `points` of the steps the study traced its reporting cells at (spaced): the
    steps each study run of the page shows. (The twins, traced at every step, are not
    shown: steps spaced over theirs left the reporting cells' rows NaN.)"""
    return spaced(traces.loc[traces["part"] == "report", "step"], points)


def study_runs(
    traces: pd.DataFrame, cells: pd.DataFrame, xy: dict[tuple[str, int], tuple[list, list]],
    surfaces: Surfaces, steps: npt.NDArray[np.int64],
) -> list[Run]:  # fmt: skip
    """The study's reporting cells at their tuned lr: weight and bias after each of `steps`
    (some of those the study traced; nan after a cell stopped), with the start of each
    (cells.parquet)."""
    import pandas as pd

    kept = traces[(traces["part"] == "report") & traces["step"].isin(steps)]
    report = cells[(cells["part"] == "report") & (cells["lr_kind"] == "tuned")]
    starts = report[[*KEYS, "init_weight", "init_bias", "diverged_step", "loss_param"]]
    runs_of = kept[KEYS].drop_duplicates().merge(starts, on=KEYS, how="left", validate="1:1")
    row = pd.MultiIndex.from_frame(runs_of[KEYS]).get_indexer(pd.MultiIndex.from_frame(kept[KEYS]))
    table = np.full((len(runs_of), len(steps), 2), np.nan, dtype=np.float32)
    table[row, np.searchsorted(steps, kept["step"].to_numpy())] = kept[["weight", "bias"]]
    runs = []
    for i, r in enumerate(runs_of.itertuples(index=False)):
        dataset = surfaces.datasets.add(*xy[(str(r.scenario), int(r.seed))])
        stop = int(r.diverged_step)
        runs.append(
            Run(
                kind="study",
                scenario=str(r.scenario),
                loss=str(r.loss),
                optimizer=str(r.optimizer),
                clip=str(r.clip),
                lr=float(r.lr),
                seed=int(r.seed),
                dataset=dataset,
                surface=surfaces.add(dataset, str(r.loss), float(r.loss_param)),
                initial=(float(r.init_weight), float(r.init_bias)),
                columns=PATH_COLUMNS,
                values=table[i],
                name=f"{r.scenario}-{r.loss}-{r.optimizer}-{r.clip}",
                diverged_step=None if stop < 0 else stop,
            )
        )
    return runs


def study_data(path: Path) -> dict[tuple[str, int], tuple[list[float], list[float]]]:
    """(x, y) of each (scenario, seed) of data/scenarios.csv, in point order."""
    import pandas as pd

    frame = pd.read_csv(path).sort_values(["scenario", "seed", "point"])
    return {
        (str(s), int(seed)): (rows["x"].tolist(), rows["y"].tolist())
        for (s, seed), rows in frame.groupby(["scenario", "seed"], sort=False)
    }
