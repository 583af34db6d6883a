"""Stage generate: the CSV of `generate.preset`, as train reads it."""

from pathlib import Path

from pipeline.grid import data
from pipeline.stages import generate
from tests.conftest import write_params


def test_main_writes_the_tutorials_points(tmp_path: Path) -> None:
    """With the committed params the stage writes exactly x = 1, 2, 3; y = 2, 4, 6."""
    out = tmp_path / "data" / "points.csv"

    generate.main(["--out", str(out)])

    x, y = data.read_points(out)
    assert x.tolist() == [1.0, 2.0, 3.0] and y.tolist() == [2.0, 4.0, 6.0]


def test_main_writes_the_line_preset(tmp_path: Path, raw_params: dict) -> None:
    """preset: line with only `noise` set writes 20 noisy points, the others at defaults."""
    raw = {**raw_params, "generate": {"preset": "line", "noise": 0.5}}
    p = write_params(tmp_path / "params.yaml", raw)
    out = tmp_path / "points.csv"

    generate.main(["--params", str(p), "--out", str(out)])

    x, y = data.read_points(out)
    assert len(x) == 20 and x[0] == -2.0 and x[-1] == 2.0
    assert not (y == 2.0 * x).all()
