"""Stage generate: the tutorial preset, the custom line, noise, and the written CSV."""

from pathlib import Path

import numpy as np
import pytest

from pipeline import generate, params


def test_tutorial_preset_is_exactly_the_tutorials_points(committed: params.Params) -> None:
    """preset: tutorial gives x = 1, 2, 3 and y = 2, 4, 6 exactly."""
    frame = generate.points(committed.generate.model_copy(update={"preset": "tutorial"}))
    assert frame["x"].tolist() == [1.0, 2.0, 3.0] and frame["y"].tolist() == [2.0, 4.0, 6.0]


def test_custom_line_without_noise_is_exact(committed: params.Params) -> None:
    """preset: custom puts n points evenly on [x_min, x_max] exactly on slope * x + intercept."""
    p = committed.generate.model_copy(
        update={
            "preset": "custom",
            "n": 5,
            "x_min": -1.0,
            "x_max": 1.0,
            "slope": 3.0,
            "intercept": 0.5,
            "noise": 0.0,
        }
    )
    frame = generate.points(p)
    assert frame["x"].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert frame["y"].tolist() == pytest.approx([-2.5, -1.0, 0.5, 2.0, 3.5], abs=0)
    assert generate.optimum(p) == (3.0, 0.5)


def test_noise_is_seeded_and_scaled(committed: params.Params) -> None:
    """Noise is reproducible for one seed, different for another, with the asked deviation."""
    base = committed.generate.model_copy(update={"preset": "custom", "n": 4000, "noise": 0.5})
    a, b = generate.points(base), generate.points(base)
    c = generate.points(base.model_copy(update={"seed": base.seed + 1}))
    assert a.equals(b) and not a.equals(c)
    residual = a["y"] - (base.slope * a["x"] + base.intercept)
    assert np.std(residual) == pytest.approx(0.5, rel=0.05)


def test_main_writes_csv_that_read_points_accepts(tmp_path: Path) -> None:
    """The stage's CSV reads back as the same floats."""
    out = tmp_path / "data" / "points.csv"
    generate.main(["--out", str(out)])
    x, y = generate.read_points(out)
    assert x.tolist() == [1.0, 2.0, 3.0] and y.tolist() == [2.0, 4.0, 6.0]
    assert out.read_text().splitlines()[0] == "x,y"
