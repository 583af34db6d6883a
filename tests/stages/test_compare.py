"""Stage `compare`: the ranking, its Markdown, curves.csv and the PNGs, all from what
train wrote (its manifest and traces)."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from pipeline import params
from pipeline.files import atomic
from pipeline.grid.manifest import Manifest, stamped
from pipeline.stages import compare, env, generate, train
from tests.conftest import ROOT

COMMITTED = ROOT / "params.yaml"
LOSSES = ["mse", "l1"]
OPTIMIZERS = ["sgd", "adam"]
CLIPS = ["none", "norm"]
DIVERGING = "mse-sgd-none"  # sgd at lr 10 on unclipped MSE overflows float32 within 30 steps


def small_params(folder: Path) -> Path:
    """A valid params.yaml for a 2 x 2 x 2 grid of 30 steps, one worker (JSON is YAML)."""
    data = params.read_yaml(COMMITTED)
    assert isinstance(data, dict)
    data["env"]["workers"] = 1
    data["train"]["steps"] = 30
    data["train"]["grid"] = {
        "losses": LOSSES,
        "optimizers": OPTIMIZERS,
        "clips": CLIPS,
        "seeds": [42],
    }
    data["train"]["optimizers"]["sgd"]["lr"] = 10.0
    path = folder / "params.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def argv(**paths: Path) -> list[str]:
    return [arg for name, path in paths.items() for arg in (f"--{name}", str(path))]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding params.yaml, data/points.csv, traces/ (with the manifest),
    reports/cells.csv, reports/metrics.json and reports/env.json."""
    root = tmp_path_factory.mktemp("project")
    p, data = small_params(root), root / "data/points.csv"
    env.main(argv(params=p, out=root / "reports/env.json"))
    generate.main(argv(params=p, out=data))
    reports = {"cells": root / "reports/cells.csv", "metrics": root / "reports/metrics.json"}
    train.main(argv(params=p, data=data, traces=root / "traces", **reports))
    return root


def run_compare(project: Path, out: Path) -> None:
    inputs = {"params": project / "params.yaml", "traces": project / "traces"}
    inputs |= {"data": project / "data/points.csv", "env": project / "reports/env.json"}
    outputs = {"ranking": out / "compare.md", "curves": out / "curves.csv", "plots": out / "plots"}
    compare.main(argv(**inputs, **outputs))


def files(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def test_main_writes_every_output(project: Path, tmp_path: Path) -> None:
    """main writes the ranking, curves and a PNG per loss (x2) and per cell, stamped with
    the training outputs it was made from."""
    run_compare(project, tmp_path)

    trained = Manifest.read(project / "traces")
    names = [c.name for c in trained.cells()]
    text = (tmp_path / "compare.md").read_text()
    assert stamped(text) == trained.source
    table_md = text.split("\n\n")[3]  # after the title, the stamp and the legend
    rows = [line.split("|")[2].strip() for line in table_md.splitlines()[2:]]
    assert sorted(rows) == sorted(names) and rows[-1] == DIVERGING
    fingerprint = json.loads((project / "reports/env.json").read_text())
    assert "## Environment (what decides the numbers)\n" in text
    assert "| torch " in text and fingerprint["torch"] in text
    curves = pd.read_csv(tmp_path / "curves.csv")
    stride = params.load(project / "params.yaml").compare.curve_stride
    kept = {
        e.cell.name: len({*range(0, int(n), stride), int(n) - 1})
        for e in trained.entries
        for n in [e.measures["steps_run"]]
    }
    assert curves.groupby("cell").size().to_dict() == kept
    pngs = [f"loss_{x}.png" for x in LOSSES] + [f"trajectory_{x}.png" for x in LOSSES]
    pngs += [f"cells/{n}.png" for n in names]
    written = files(tmp_path / "plots")
    assert sorted(written) == sorted(pngs)
    assert all(data.startswith(b"\x89PNG") and b"Software" not in data for data in written.values())
    assert not [f for f in tmp_path.rglob("*") if atomic.TMP_SUFFIX in f.name]


def test_main_gives_identical_bytes_twice(project: Path, tmp_path: Path) -> None:
    """Two runs on the same inputs write byte-identical files, PNGs included."""
    run_compare(project, tmp_path / "a")
    run_compare(project, tmp_path / "b")
    first, second = files(tmp_path / "a"), files(tmp_path / "b")
    assert first.keys() == second.keys() and len(first) > 4
    assert [name for name in first if first[name] != second[name]] == []


def exits_2_writing_nothing(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[Path], None],
) -> str:
    """Run compare on a copy of `project` damaged by `damage`; assert exit 2 and no output
    folder; return stderr."""
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    damage(copy)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        run_compare(copy, out)
    assert exit_info.value.code == params.EXIT_BAD_INPUT
    assert not out.exists()
    return capsys.readouterr().err


def test_main_exits_2_naming_a_missing_trace_and_writes_nothing(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A grid cell without a trace file: exit 2, stderr names it, no output is written."""

    def damage(root: Path) -> None:
        (root / "traces" / "l1-adam-norm.csv").unlink()

    assert "l1-adam-norm" in exits_2_writing_nothing(project, tmp_path, capsys, damage)


def test_main_exits_2_naming_a_missing_env_file(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No reports/env.json: exit 2, stderr names the file and the stage, nothing is written."""

    def damage(root: Path) -> None:
        (root / "reports/env.json").unlink()

    err = exits_2_writing_nothing(project, tmp_path, capsys, damage)
    assert "env.json: file not found (run `dvc repro env`)" in err


def test_main_exits_2_when_the_data_is_not_what_was_trained_on(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Points that changed since training: exit 2 naming the stale stage, nothing written."""

    def damage(root: Path) -> None:
        (root / "data/points.csv").write_text("x,y\n1.0,2.5\n2.0,4.0\n")

    err = exits_2_writing_nothing(project, tmp_path, capsys, damage)
    assert "stage train is stale" in err and "dvc repro" in err


def test_main_exits_2_naming_a_missing_manifest(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Traces without train's manifest: exit 2 naming the file and `dvc repro train`."""

    def damage(root: Path) -> None:
        (root / "traces" / "manifest.json").unlink()

    err = exits_2_writing_nothing(project, tmp_path, capsys, damage)
    assert "manifest.json: file not found (run `dvc repro train`)" in err
