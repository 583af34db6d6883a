"""One cell's trace (pipeline.grid.trace): the steps its MLflow histories keep."""

import itertools

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
