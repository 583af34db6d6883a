"""One cell's trace (pipeline.grid.trace): the steps its MLflow histories keep."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from pipeline.grid import trace


@pytest.mark.parametrize(("steps", "points"), [(500, 30), (2000, 30), (30, 8), (7, 30), (1, 2)])
def test_history_steps_are_log_spaced_with_the_first_and_last(steps: int, points: int) -> None:
    """About `points` distinct steps, increasing, dense first (no gap shrinks by more than
    rounding), always 0 and steps - 1; every step when there are no more steps than points."""
    got = trace.history_steps(steps, points)

    gaps = [b - a for a, b in itertools.pairwise(got)]
    assert got[0] == 0 and got[-1] == steps - 1 and len(set(got)) == len(got)
    assert len(got) <= points + 1 and all(g >= 1 for g in gaps)
    assert all(later >= earlier - 1 for earlier, later in itertools.pairwise(gaps))
    assert len(got) == steps or max(gaps[:3]) < min(gaps[-3:])
    if steps <= points:
        assert got == list(range(steps))


def test_the_state_columns_follow_the_fixed_ones_and_survive_the_csv(tmp_path: Path) -> None:
    """to_frame puts COLUMNS first, then each state column; read_frame gives back the same
    float32 values (step and clipped as integers)."""
    row = trace.Row(
        step=0, loss=1.5, grad_norm=2.0, grad_weight=-1.25, grad_bias=0.5,
        clipped_grad_weight=-1.0, clipped_grad_bias=0.5, clipped=1, weight=0.1, bias=0.2,
    )  # fmt: skip
    columns = (trace.state_column("exp_avg", "weight"), trace.state_column("exp_avg", "bias"))
    done = trace.Trace(
        cell=None, initial=(0.0, 0.0), rows=[row], final_loss=1.0,  # type: ignore[arg-type]
        state_columns=columns, states=[(0.1, -0.3)],
    )  # fmt: skip
    path = tmp_path / "cell.csv"

    trace.to_frame(done).to_csv(path, index=False)
    back = trace.read_frame(path)

    assert list(back.columns) == [*trace.COLUMNS, "exp_avg_weight", "exp_avg_bias"]
    assert back["exp_avg_bias"].dtype == "float32" and back["clipped"].dtype == "int64"
    assert back["exp_avg_weight"].tolist() == [np.float32(0.1)]
