"""Stage `compare`: the ranking, its Markdown, curves.csv and the PNGs, all from what
train wrote (its manifest and traces)."""

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import grid, params
from pipeline.files import atomic
from pipeline.grid.manifest import Entry, Manifest, sha, stamped
from pipeline.grid.trace import Measures
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


def hand_cells(tmp_path: Path) -> list[grid.Cell]:
    return grid.cells(params.load(small_params(tmp_path)).train)


def hand_measures(final_loss: float | None, dist: float, step: int | None) -> Measures:
    return {
        "final_loss": final_loss,
        "final_weight": 2.0,
        "final_bias": 0.0,
        "dist_to_optimum": dist,
        "init_weight": 0.5,
        "init_bias": 0.5,
        "max_grad_norm": 3.0,
        "clip_fraction": 0.0,
        "steps_run": 3,
        "diverged": int(step is not None),
        "diverged_step": step,
        "diverged_reason": "loss" if step is not None else None,
    }


def hand_manifest(cells: list[grid.Cell], measures: dict[str, Measures]) -> Manifest:
    entries = [Entry(c, sha(c.name.encode()), measures[c.name]) for c in cells]
    return Manifest(sha(b"points"), (2.0, 0.0), entries)


def hand_trace(losses: list[float]) -> pd.DataFrame:
    n = len(losses)
    return pd.DataFrame(
        {
            "step": range(n),
            "loss": losses,
            "grad_norm": [1.0] * n,
            "weight": np.linspace(0.5, 2.0, n),
            "bias": np.zeros(n),
        }
    )


def test_first_below_is_the_first_step_strictly_below_threshold() -> None:
    """first_below is the first step whose loss is < threshold, even if it rises again."""
    trace = hand_trace([5.0, 0.1, 0.05, 0.2, 0.01])
    assert compare.first_below(trace, 0.1) == 2


def test_first_below_is_never_when_no_loss_falls_below() -> None:
    """first_below is "never" when no step's loss is below the threshold."""
    assert compare.first_below(hand_trace([5.0, 0.5, 0.2]), 0.1) == "never"


def test_ranking_puts_diverged_cells_last_then_orders_by_distance_loss_name(
    tmp_path: Path,
) -> None:
    """Diverged cells go last even with the lowest loss; the rest by distance to the
    generating line, then loss, then name."""
    cells = hand_cells(tmp_path)
    traces = {c.name: hand_trace([1.0, 0.5]) for c in cells}
    measures = {c.name: hand_measures(0.5, 1.0, None) for c in cells}
    measures["mse-sgd-none"] = hand_measures(None, math.inf, 1)
    measures["l1-adam-norm"] = hand_measures(0.0, 5.0, 3)
    measures["mse-adam-norm"] = hand_measures(0.1, 0.3, None)
    measures["l1-sgd-none"] = hand_measures(0.1, 0.2, None)

    table = compare.ranking(hand_manifest(cells, measures), traces, threshold=1e-4)

    assert list(table["cell"][:2]) == ["l1-sgd-none", "mse-adam-norm"]
    assert list(table["cell"][-2:]) == ["l1-adam-norm", "mse-sgd-none"]
    rest = list(table["cell"][2:-2])
    assert rest == sorted(rest)
    assert list(table["diverged"][-2:]) == ["step 3 (loss)", "step 1 (loss)"]
    assert list(table.columns) == [
        "cell",
        "loss",
        "optimizer",
        "clip",
        "seed",
        "final_loss",
        "final_weight",
        "final_bias",
        "dist_to_optimum",
        "first_below",
        "max_grad_norm",
        "clip_fraction",
        "diverged",
    ]


def test_markdown_has_a_header_a_rule_and_one_row_per_cell(tmp_path: Path) -> None:
    """frame_table gives header, rule and one `|`-delimited row per cell, numbers to 4 digits."""
    cells = hand_cells(tmp_path)
    traces = {c.name: hand_trace([1.0, 0.5]) for c in cells}
    measures = {c.name: hand_measures(0.123456, 1.0, None) for c in cells}
    measures[cells[0].name] = hand_measures(None, 2.0, 0)

    table = compare.ranking(hand_manifest(cells, measures), traces, 1e-4)
    lines = compare.frame_table(table).splitlines()

    assert len(lines) == 2 + len(cells)
    assert set(lines[1]) <= {"|", "-", ":", " "}
    assert [line.split("|")[1].strip() for line in lines[2:]] == [
        *sorted(c.name for c in cells[1:]),
        cells[0].name,
    ]
    assert "0.1235" in lines[2] and "n/a" in lines[-1]
    assert len({len(line) for line in lines}) == 1  # columns line up


def test_curves_keep_every_stride_th_step_and_the_last(tmp_path: Path) -> None:
    """curves keeps steps 0, k, 2k, ... and each cell's last step, in long format."""
    cells = hand_cells(tmp_path)[:2]
    trained = hand_manifest(cells, {c.name: hand_measures(0.5, 1.0, None) for c in cells})
    traces = {cells[0].name: hand_trace([1.0] * 8), cells[1].name: hand_trace([1.0] * 3)}

    got = compare.curves(trained, traces, stride=3)

    assert list(got.columns) == [
        "cell",
        "loss",
        "optimizer",
        "clip",
        "seed",
        "step",
        "loss_value",
        "grad_norm",
    ]
    assert got.groupby("cell", sort=False)["step"].apply(list).to_dict() == {
        cells[0].name: [0, 3, 6, 7],
        cells[1].name: [0, 2],
    }


def test_curves_with_stride_1_keep_every_step(tmp_path: Path) -> None:
    """At stride 1 curves holds every row of every trace."""
    cells = hand_cells(tmp_path)[:2]
    trained = hand_manifest(cells, {c.name: hand_measures(0.5, 1.0, None) for c in cells})
    traces = {c.name: hand_trace([3.0, 2.0, 1.0]) for c in cells}

    assert len(compare.curves(trained, traces, stride=1)) == 6


def test_environment_is_a_section_with_a_row_per_field() -> None:
    """environment renders a heading and a field | value row per key, lists joined."""
    fingerprint = {"torch": "2.13.0+cpu", "threads": 1, "deterministic": True, "cpu_flags": ["avx"]}

    lines = compare.environment(fingerprint | {"none": []}).splitlines()

    assert lines[:2] == ["## Environment (what decides the numbers)", ""]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[4:]]
    assert rows == [
        ["torch", "2.13.0+cpu"],
        ["threads", "1"],
        ["deterministic", "true"],
        ["cpu_flags", "avx"],
        ["none", "none"],
    ]


def test_main_writes_every_output(project: Path, tmp_path: Path) -> None:
    """main writes the ranking, curves and a PNG per loss (x2) and per cell, stamped with
    the training outputs it was made from."""
    run_compare(project, tmp_path)

    trained = Manifest.read(project / "traces")
    names = [c.name for c in trained.cells()]
    text = (tmp_path / "compare.md").read_text()
    assert stamped(text) == trained.source
    table_md = text.split("\n\n")[2]
    rows = [line.split("|")[1].strip() for line in table_md.splitlines()[2:]]
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
