"""The data: the tutorial preset, the noisy line, and the points file read back."""

from pathlib import Path

import numpy as np
import pytest

from pipeline import params
from pipeline.files.inputs import InputError
from pipeline.grid import data


def line(**changes: object) -> params.LineData:
    return params.LineData.model_validate({"preset": "line", **changes})


def test_tutorial_preset_is_exactly_the_tutorials_points() -> None:
    """preset: tutorial gives x = 1, 2, 3 and y = 2, 4, 6 exactly, drawn from y = 2x."""
    tutorial = params.TutorialData(preset="tutorial")

    x, y = data.points(tutorial)

    assert x.tolist() == [1.0, 2.0, 3.0] and y.tolist() == [2.0, 4.0, 6.0]
    assert data.generating_line(tutorial) == (2.0, 0.0)


def test_line_without_noise_is_exact() -> None:
    """preset: line puts n points evenly on [x_min, x_max] exactly on slope * x + intercept."""
    p = line(n=5, x_min=-1.0, x_max=1.0, slope=3.0, intercept=0.5)

    x, y = data.points(p)

    assert x.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert y.tolist() == pytest.approx([-2.5, -1.0, 0.5, 2.0, 3.5], abs=0)
    assert data.generating_line(p) == (3.0, 0.5)


def test_noise_is_seeded_and_scaled() -> None:
    """Noise is reproducible for one seed, different for another, with the asked deviation."""
    p = line(n=4000, noise=0.5)

    (xa, ya), (_, yb) = data.points(p), data.points(p)
    _, yc = data.points(p.model_copy(update={"seed": p.seed + 1}))

    assert np.array_equal(ya, yb) and not np.array_equal(ya, yc)
    assert np.std(ya - (p.slope * xa + p.intercept)) == pytest.approx(0.5, rel=0.05)


def test_points_file_reads_back_as_the_same_floats(tmp_path: Path) -> None:
    """to_csv writes the shortest exact decimals; read_points gives back the same bits."""
    x, y = data.points(line(n=7, noise=0.3))
    path = tmp_path / "points.csv"
    path.write_text(data.to_csv(x, y))

    back = data.read_points(path)

    assert np.array_equal(back[0], x) and np.array_equal(back[1], y)
    assert path.read_text().splitlines()[0] == "x,y"


def test_a_missing_points_file_names_the_stage_that_writes_it(tmp_path: Path) -> None:
    """read_points of a missing file says to run `dvc repro generate`."""
    with pytest.raises(InputError, match=r"file not found \(run `dvc repro generate`\)"):
        data.read_points(tmp_path / "points.csv")
