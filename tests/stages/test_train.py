"""Training: the reference loop against closed-form SGD, determinism, divergence; the
stage's outputs (traces, manifest, cells.csv, headline metrics) and bad data."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.grid import trace
from pipeline.grid.manifest import Manifest
from pipeline.stages import train
from tests.conftest import ROOT, small_grid, write_params

OUTPUTS = ("traces", "cells.csv", "metrics.json")


def _train_args(tmp_path: Path, params_file: Path, data: Path) -> list[str]:
    """The train stage's arguments, writing into tmp_path."""
    out = dict(zip(("--traces", "--cells", "--metrics"), OUTPUTS, strict=True))
    paths = [arg for flag, name in out.items() for arg in (flag, str(tmp_path / name))]
    return ["--params", str(params_file), "--data", str(data), *paths]


def _run_train(tmp_path: Path, params_file: Path, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "train", *_train_args(tmp_path, params_file, data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_main_writes_traces_manifest_cells_and_headline(tmp_path: Path, raw_params: dict) -> None:
    """The stage writes a trace per cell, the manifest, a row per cell and a short headline."""
    p = write_params(tmp_path / "params.yaml", small_grid(raw_params))
    data = tmp_path / "points.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]}).to_csv(data, index=False)

    run = _run_train(tmp_path, p, data)

    assert run.returncode == 0, run.stderr
    trained = Manifest.read(tmp_path / "traces")
    names = sorted(f.stem for f in (tmp_path / "traces").glob("*.csv"))
    assert names == sorted(c.name for c in trained.cells()) and len(names) == 8
    frame = trace.read_frame(tmp_path / "traces" / "mse-sgd-none.csv")
    assert list(frame.columns) == list(trace.COLUMNS) and len(frame) == 30
    cells = pd.read_csv(tmp_path / "cells.csv")
    assert sorted(cells["cell"]) == names
    headline = json.loads((tmp_path / "metrics.json").read_text())
    assert headline["cells"] == 8 and set(headline["optimizer"]) == {"sgd", "adam"}


BAD_DATA = [
    ("x,z\n1,2\n", "missing column y"),
    ("x,y\n", "no data rows"),
    ("", "empty file"),
    ("x,y\n1,2\n2,nan\n", "line 3, column y: 'nan' is not a finite number"),
    ("x,y\n1,2\ninf,4\n", "line 3, column x: 'inf' is not a finite number"),
    ("x,y\n1,2\n2,four\n", "line 3, column y: 'four' is not a finite number"),
    ("x,y\n1,2\n2,\n", "line 3, column y: '' is not a finite number"),
]


@pytest.mark.parametrize(("text", "message"), BAD_DATA)
def test_bad_data_is_refused_naming_file_line_and_column(
    tmp_path: Path, raw_params: dict, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken points file exits 2 with one line naming file, line and column; no outputs."""
    p = write_params(tmp_path / "params.yaml", small_grid(copy.deepcopy(raw_params)))
    data = tmp_path / "points.csv"
    data.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        train.main(_train_args(tmp_path, p, data))
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {data}: {message}")
    assert not any((tmp_path / name).exists() for name in OUTPUTS)
