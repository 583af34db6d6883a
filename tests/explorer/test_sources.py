"""What the explorer takes of the study's outputs (pipeline.explorer.sources)."""

import numpy as np
import pandas as pd

from pipeline.explorer import sources


def test_study_runs_show_only_steps_the_reporting_cells_were_traced_at() -> None:
    """Twins are traced at every step, reporting cells at log-spaced ones: the steps a study
    run shows are all among the latter, the first and last included (found by hand: spaced
    over every row, 13 of a run's 15 steps had no trace and showed NaN)."""
    traced = np.unique(np.geomspace(1, 500, 47).round().astype(int) - 1)
    traces = pd.DataFrame(
        {
            "part": ["twin"] * 500 + ["report"] * len(traced),
            "step": np.concatenate([np.arange(500), traced]),
        }
    )

    steps = sources.study_steps(traces, 15)

    assert set(steps) <= set(traced) and 12 <= len(steps) <= 16
    assert (steps[0], steps[-1]) == (traced[0], traced[-1])
    assert not set(sources.spaced(traces["step"], 15)) <= set(traced)  # the bug, every row
