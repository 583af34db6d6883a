"""The study's data: each scenario's points for each seed, and the classification points.

A seed draws everything random about a data set (noise, which targets are outliers,
classification points) from its own generator, keyed by the seed and the scenario's
name, so adding a scenario or a seed changes no other data set. The study trains every
cell on the data set of its scenario and seed; a seed also picks the cell's start.
"""

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pipeline import params
from pipeline.files import inputs
from pipeline.files.message import shown
from pipeline.grid.data import TUTORIAL_LINE, TUTORIAL_X

if TYPE_CHECKING:
    import pandas as pd

Array = npt.NDArray[np.float64]
CLASS_LINE = 2.0  # classification: label 1 above y = 2x, 0 below


@dataclass(frozen=True)
class Points:
    """One scenario's data sets: row i is seed seeds[i]'s."""

    seeds: list[int]
    x: Array  # (seeds, n)
    y: Array  # (seeds, n)
    line: tuple[float, float]  # the (slope, intercept) the points were drawn from


def _rng(name: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _line(s: params.LineScenario, rng: np.random.Generator) -> tuple[Array, Array]:
    x = np.linspace(s.x_min, s.x_max, s.n)
    clean = s.slope * x + s.intercept
    if isinstance(s, params.HeavyScenario):
        return x, clean + s.noise * rng.standard_t(s.df, s.n)
    y = clean + rng.normal(0.0, s.noise, s.n)
    if isinstance(s, params.OutlierScenario):
        shifted = rng.choice(s.n, size=round(s.fraction * s.n), replace=False)
        y[shifted] += s.offset
    return x, y


def tolerance(s: params.Scenario, points: Points) -> float:
    """The scenario's target radius in (w, b): its `tol`, a share of the size
    sqrt(slope^2 + intercept^2) of the line its points were drawn from."""
    return s.tol * math.hypot(*points.line)


def points(name: str, s: params.Scenario, seeds: Sequence[int]) -> Points:
    """The data set of each seed in scenario `name`."""
    if isinstance(s, params.TutorialScenario):
        x = np.tile(np.array(TUTORIAL_X), (len(seeds), 1))
        return Points(list(seeds), x, TUTORIAL_LINE[0] * x, TUTORIAL_LINE)
    rows = [_line(s, _rng(name, seed)) for seed in seeds]
    x, y = (np.stack(column) for column in zip(*rows, strict=True))
    return Points(list(seeds), x, y, (s.slope, s.intercept))


@dataclass(frozen=True)
class Classes:
    """Classification data sets: points uniform in [-1, 1]^2, labelled by their side of
    y = 2x (1 above). Row i is seed seeds[i]'s."""

    seeds: list[int]
    x: Array  # (seeds, n, 2)
    labels: npt.NDArray[np.int64]  # (seeds, n)


def classes(c: params.Classification, seeds: Sequence[int]) -> Classes:
    """The classification points of each seed."""
    x = np.stack([_rng("classification", seed).uniform(-1.0, 1.0, (c.n, 2)) for seed in seeds])
    labels = (x[..., 1] > CLASS_LINE * x[..., 0]).astype(np.int64)
    return Classes(list(seeds), x, labels)


def study_seeds(p: params.StudyParams) -> list[int]:
    """Every seed of the study, tuning seeds first, each once."""
    return list(dict.fromkeys([*p.seeds.tune, *p.seeds.report]))


# --- the files: data/scenarios.csv and data/classes.csv, read back exactly --------------
def scenarios_csv(found: dict[str, Points]) -> str:
    """Long format: scenario, seed, point, x, y; floats as their shortest exact decimal."""
    lines = ["scenario,seed,point,x,y"]
    for name, p in found.items():
        for seed, xs, ys in zip(p.seeds, p.x, p.y, strict=True):
            lines += [
                f"{name},{seed},{i},{a!r},{b!r}"
                for i, (a, b) in enumerate(zip(xs.tolist(), ys.tolist(), strict=True))
            ]
    return "\n".join(lines) + "\n"


def classes_csv(c: Classes) -> str:
    """Long format: seed, point, x1, x2, label."""
    lines = ["seed,point,x1,x2,label"]
    for seed, xs, labels in zip(c.seeds, c.x, c.labels, strict=True):
        lines += [
            f"{seed},{i},{a!r},{b!r},{k}"
            for i, ((a, b), k) in enumerate(zip(xs.tolist(), labels.tolist(), strict=True))
        ]
    return "\n".join(lines) + "\n"


SCENARIOS_CSV: dict[str, inputs.Kind] = {
    "scenario": "name", "seed": "index", "point": "index", "x": "number", "y": "number"
}  # fmt: skip
CLASSES_CSV: dict[str, inputs.Kind] = {
    "seed": "index", "point": "index", "x1": "number", "x2": "number", "label": "label"
}  # fmt: skip


def _stale(path: Path, what: str) -> inputs.InputError:
    return inputs.InputError(f"{path}: {what} (stage generate is stale): run `dvc repro`")


def _rows(path: Path, frame: "pd.DataFrame", seeds: list[int], where: str) -> "pd.DataFrame":
    """`frame`'s rows of `seeds`, by (seed, point), each seed with points 0..n-1 and the
    same n (the engine trains a data shape at a time); InputError naming what is not."""
    if missing := [s for s in seeds if s not in set(frame["seed"].tolist())]:
        raise _stale(path, f"{where}has no data for seeds {shown(missing)}")
    table = frame.set_index(["seed", "point"]).sort_index()
    if table.index.has_duplicates:
        seed, point = table.index[table.index.duplicated()][0]
        raise _stale(path, f"{where}seed {seed} has point {point} twice")
    counts = table.groupby(level="seed").size()
    n = int(counts[seeds[0]])
    for seed in seeds:
        points = table.loc[seed].index.tolist()
        if points != list(range(n)):
            raise _stale(path, f"{where}seed {seed} has points {shown(points)}, not 0..{n - 1}")
    return table


def read_points(path: Path, p: params.Params) -> dict[str, Points]:
    """The data of every scenario and seed of the study, from `path` (scenarios_csv);
    InputError naming the file, line, column and value of a bad one, or what is missing."""
    frame = inputs.read_data(path, SCENARIOS_CSV, "generate")
    seeds = study_seeds(p.study)
    found = {}
    for name in p.study.scenarios:
        table = _rows(path, frame[frame["scenario"] == name], seeds, f"scenario {name} ")
        x = np.stack([table.loc[s, "x"].to_numpy(np.float64) for s in seeds])
        y = np.stack([table.loc[s, "y"].to_numpy(np.float64) for s in seeds])
        scenario = p.scenarios[name]
        line = (
            TUTORIAL_LINE
            if isinstance(scenario, params.TutorialScenario)
            else (scenario.slope, scenario.intercept)
        )
        found[name] = Points(seeds, x, y, line)
    return found


def read_points_or_exit(path: Path, p: params.Params) -> dict[str, Points]:
    with inputs.or_exit():
        return read_points(path, p)


def read_classes(path: Path, p: params.Params) -> Classes:
    """The classification points of every study seed, from `path` (classes_csv); InputError
    as read_points."""
    seeds = study_seeds(p.study)
    table = _rows(path, inputs.read_data(path, CLASSES_CSV, "generate"), seeds, "")
    x = np.stack([table.loc[s, ["x1", "x2"]].to_numpy(np.float64) for s in seeds])
    labels = np.stack([table.loc[s, "label"].to_numpy(np.int64) for s in seeds])
    return Classes(seeds, x, labels)


def read_classes_or_exit(path: Path, p: params.Params) -> Classes:
    with inputs.or_exit():
        return read_classes(path, p)
