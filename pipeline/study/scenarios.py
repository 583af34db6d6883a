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

import numpy as np
import numpy.typing as npt

from pipeline import params
from pipeline.files.inputs import InputError, or_exit
from pipeline.grid.data import TUTORIAL_LINE, TUTORIAL_X

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


def read_points(path: Path, p: params.Params) -> dict[str, Points]:
    """The data of every scenario and seed of the study, from `path` (scenarios_csv);
    InputError naming the stage to rerun when one is missing."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (run `dvc repro generate`)") from None
    seeds = study_seeds(p.study)
    found = {}
    for name in p.study.scenarios:
        rows = frame[frame["scenario"] == name]
        have = set(rows["seed"].unique().tolist())
        if missing := [s for s in seeds if s not in have]:
            raise InputError(
                f"{path}: scenario {name} has no data for seeds {missing} (stage generate "
                "is stale): run `dvc repro`"
            )
        table = rows.set_index(["seed", "point"]).sort_index()
        x = np.stack([table.loc[s, "x"].to_numpy(np.float64) for s in seeds])
        y = np.stack([table.loc[s, "y"].to_numpy(np.float64) for s in seeds])
        scenario = p.scenarios[name]
        line = (
            (2.0, 0.0)
            if isinstance(scenario, params.TutorialScenario)
            else (scenario.slope, scenario.intercept)
        )
        found[name] = Points(seeds, x, y, line)
    return found


def read_points_or_exit(path: Path, p: params.Params) -> dict[str, Points]:
    with or_exit():
        return read_points(path, p)


def read_classes(path: Path, p: params.Params) -> Classes:
    """The classification points of every study seed, from `path` (classes_csv)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path).set_index(["seed", "point"]).sort_index()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (run `dvc repro generate`)") from None
    seeds = study_seeds(p.study)
    if missing := [s for s in seeds if s not in frame.index.get_level_values(0)]:
        raise InputError(
            f"{path}: no data for seeds {missing} (stage generate is stale): run `dvc repro`"
        )
    x = np.stack([frame.loc[s, ["x1", "x2"]].to_numpy(np.float64) for s in seeds])
    labels = np.stack([frame.loc[s, "label"].to_numpy(np.int64) for s in seeds])
    return Classes(seeds, x, labels)


def read_classes_or_exit(path: Path, p: params.Params) -> Classes:
    with or_exit():
        return read_classes(path, p)
