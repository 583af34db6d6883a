"""A tiny study built by the real code, for the tests of the study's modules.

`params_for` shrinks the committed params to a few configurations and steps; `build`
runs what stage study runs (scenarios.points, st.tune_parts, chunks.chunks and
chunks.train_chunk, protocol.tune, st.report_parts with traces) in this process,
without files, and returns the tables as pandas frames. Test modules wrap `build` in a
module-scoped fixture so each builds it once.
"""

import copy
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from pipeline import params
from pipeline.grid import trace
from pipeline.study import chunks, protocol, scenarios
from pipeline.study import design as st

TINY_STUDY = {  # 2 scenarios x 2 losses x 2 optimizers x 2 clips, 300 steps
    "steps": 300,
    "scenarios": ["tutorial", "noisy"],
    "losses": ["mse", "huber"],
    "optimizers": ["sgd", "adam"],
    "clips": ["none", "norm"],
    "lr": {"low": 1e-2, "high": 1.0, "per_decade": 2, "near_edge": [0.5, 0.9, 0.99]},
    "seeds": {"tune": [0, 1, 2, 3, 4], "report": list(range(10, 20))},
}


def params_for(raw: dict, **study_: object) -> params.Params:
    """The committed params (raw: params.yaml as data) with TINY_STUDY's study keys, then
    `study_`'s, validated."""
    data = copy.deepcopy(raw)
    data["study"].update(copy.deepcopy(TINY_STUDY))
    data["study"].update(copy.deepcopy(study_))
    return params.parse(data)


def data_for(p: params.Params) -> dict[str, scenarios.Points]:
    """Every study scenario's points for every study seed, as stage generate draws them."""
    seeds = scenarios.study_seeds(p.study)
    return {n: scenarios.points(n, p.scenarios[n], seeds) for n in p.study.scenarios}


def train(
    parts: list[st.Part], size: int, trace_steps: npt.NDArray[np.int64] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The parts trained in chunks of `size` cells: (cell rows, trace rows or None)."""
    cells, traces = [], []
    for chunk in chunks.chunks(parts, size, trace_steps):
        rows, traced = chunks.train_chunk(chunk)
        cells.append(pd.DataFrame(rows))
        if traced is not None:
            traces.append(pd.DataFrame(traced))
    joined = pd.concat(traces, ignore_index=True) if traces else None
    return pd.concat(cells, ignore_index=True), joined


@dataclass(frozen=True)
class Study:
    """A trained tiny study: its params, data and tables."""

    p: params.Params
    data: dict[str, scenarios.Points]
    tune: pd.DataFrame  # cell rows of the tune part
    tuned: pd.DataFrame  # protocol.tune of them
    report: pd.DataFrame  # cell rows of the report part
    traces: pd.DataFrame  # trace rows of the report part

    @property
    def cells(self) -> pd.DataFrame:
        """The tune and report rows, as the study's cells table holds them."""
        return pd.concat([self.tune, self.report], ignore_index=True)


def build(raw: dict, **study_: object) -> Study:
    """The tiny study (`params_for(raw, **study_)`) tuned and reported, as stage study does."""
    p = params_for(raw, **study_)
    data = data_for(p)
    chunk = p.study.chunk
    tune, _ = train(st.tune_parts(p, data), chunk)
    tuned = protocol.tune(tune)
    lrs = dict(zip(tuned["config"], tuned["tuned_lr"], strict=True))
    steps = np.array(trace.history_steps(p.study.steps, p.study.trace_points))
    report, traces = train(st.report_parts(p, data, lrs), chunk, steps)
    assert traces is not None  # asked for: the report part is traced
    return Study(p, data, tune, tuned, report, traces)


@pytest.fixture(scope="session")
def tiny_study(raw_params: dict) -> Study:
    """The committed params' study, shrunk (build()), trained once per test session."""
    return build(raw_params)
