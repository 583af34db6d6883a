"""The contour surface: its frame, its values (closed form, right way round) and its axes."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from pipeline import grid, params
from pipeline.grid import surface
from pipeline.losses import LOSSES


def cell_of(p: params.Params, loss: str) -> grid.Cell:
    return next(c for c in grid.cells(p.train) if c.loss == loss)


def test_bounds_pad_the_optimum_and_points_by_a_tenth_or_a_quarter() -> None:
    """bounds spans the optimum and every point, padded by 10% of the span, at least 0.25."""
    points = [np.array([[0.0, 0.0]]), np.array([[4.0, 1.0], [3.0, 0.5]])]

    got = surface.bounds((2.0, 0.0), points)

    assert got == pytest.approx((-0.4, 4.4, -0.25, 1.25), abs=1e-15)


def test_bounds_include_an_optimum_outside_the_points() -> None:
    """The optimum widens the frame like any point."""
    got = surface.bounds((10.0, -10.0), [np.array([[0.0, 0.0]])])

    assert got == pytest.approx((-1.0, 11.0, -11.0, 1.0), abs=1e-12)


@pytest.mark.parametrize("loss", ["mse", "huber"])
def test_values_are_the_closed_form_mean_loss_at_each_weight_and_bias(
    committed: params.Params, loss: str
) -> None:
    """values[i, j] is the mean loss at bias i, weight j, with the cell's kwargs (delta)."""
    cell = cell_of(committed, loss)
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])

    s = surface.Surface.of(cell, x, y, (0.0, 4.0, -3.0, 1.0))

    assert s.values.shape == (surface.RESOLUTION, surface.RESOLUTION)
    assert (s.weights[0], s.weights[-1], s.biases[0], s.biases[-1]) == (0.0, 4.0, -3.0, 1.0)
    kwargs = {k: float(v) for k, v in cell.loss_kwargs.items()}
    for i, j in [(0, 0), (5, 40), (59, 7)]:
        d = s.weights[j] * x + s.biases[i] - y
        want = LOSSES[cell.loss].value(d, kwargs).mean()
        assert s.values[i, j] == pytest.approx(want, rel=1e-12)


def test_draw_fixes_the_axes_to_the_bounds_and_marks_the_optimum(
    committed: params.Params,
) -> None:
    """draw leaves the axes at exactly the bounds, labelled, with contours and the star."""
    frame = (0.0, 4.0, -3.0, 1.0)
    s = surface.Surface.of(cell_of(committed, "mse"), np.array([1.0]), np.array([2.0]), frame)
    ax = Figure().add_subplot()

    s.draw(ax, (2.0, 0.0))

    assert (*ax.get_xlim(), *ax.get_ylim()) == frame
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("weight", "bias")
    (star,) = ax.lines
    assert list(star.get_xydata()[0]) == [2.0, 0.0]
    assert ax.collections  # the contour lines
