"""Stage `compare` and its plots: the table, its Markdown, curves.csv and the PNGs."""

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dvc_render.vega import VegaRenderer

from pipeline import atomic, compare, env, generate, grid, params, train

ROOT = Path(__file__).resolve().parents[1]
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
    """A folder holding params.yaml, data/points.csv, traces/, reports/metrics.json and
    reports/env.json."""
    root = tmp_path_factory.mktemp("project")
    p, data = small_params(root), root / "data/points.csv"
    env.main(argv(params=p, out=root / "reports/env.json"))
    generate.main(argv(params=p, out=data))
    train.main(
        argv(params=p, data=data, traces=root / "traces", metrics=root / "reports/metrics.json")
    )
    return root


def run_compare(project: Path, out: Path) -> None:
    inputs = {"params": project / "params.yaml", "traces": project / "traces"}
    inputs |= {"metrics": project / "reports/metrics.json", "data": project / "data/points.csv"}
    inputs |= {"env": project / "reports/env.json"}
    outputs = {"table": out / "compare.csv", "markdown": out / "compare.md"}
    outputs |= {"curves": out / "curves.csv", "plots": out / "plots"}
    compare.main(argv(**inputs, **outputs))


def files(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def hand_cells(tmp_path: Path) -> list[grid.Cell]:
    return grid.cells(params.load(small_params(tmp_path)).train)


def hand_metrics(final_loss: float | None, dist: float, step: int | None) -> compare.Summary:
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


def test_table_puts_diverged_cells_last_then_orders_by_loss_distance_name(tmp_path: Path) -> None:
    """Diverged cells go last even with the lowest loss; ties fall to distance, then name."""
    cells = hand_cells(tmp_path)
    traces = {c.name: hand_trace([1.0, 0.5]) for c in cells}
    metrics = {c.name: hand_metrics(0.5, 1.0, None) for c in cells}
    metrics["mse-sgd-none"] = hand_metrics(None, math.inf, 1)
    metrics["l1-adam-norm"] = hand_metrics(0.0, 5.0, 3)
    metrics["mse-adam-norm"] = hand_metrics(0.1, 0.3, None)
    metrics["l1-sgd-none"] = hand_metrics(0.1, 0.2, None)

    table = compare.table(cells, traces, metrics, threshold=1e-4)

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


def test_table_names_a_cell_without_metrics(tmp_path: Path) -> None:
    """table raises InputError naming each grid cell that has no metrics entry."""
    cells = hand_cells(tmp_path)
    traces = {c.name: hand_trace([1.0]) for c in cells}
    metrics = {c.name: hand_metrics(0.5, 1.0, None) for c in cells[1:]}
    with pytest.raises(compare.InputError, match=f"cell {cells[0].name}: no metrics entry"):
        compare.table(cells, traces, metrics, threshold=1e-4)


def test_markdown_has_a_header_a_rule_and_one_row_per_cell(tmp_path: Path) -> None:
    """markdown gives header, rule and one `|`-delimited row per cell, numbers to 4 digits."""
    cells = hand_cells(tmp_path)
    traces = {c.name: hand_trace([1.0, 0.5]) for c in cells}
    metrics = {c.name: hand_metrics(0.123456, 1.0, None) for c in cells}
    metrics[cells[0].name] = hand_metrics(None, 2.0, 0)

    lines = compare.markdown(compare.table(cells, traces, metrics, 1e-4)).splitlines()

    assert len(lines) == 2 + len(cells)
    assert set(lines[1]) <= {"|", "-", ":", " "}
    assert [line.split("|")[1].strip() for line in lines[2:]] == [
        *sorted(c.name for c in cells[1:]),
        cells[0].name,
    ]
    assert "0.1235" in lines[2] and "n/a" in lines[-1]
    assert len({len(line) for line in lines}) == 1  # columns line up


def test_curves_keep_every_stride_th_step_and_the_last() -> None:
    """curves keeps steps 0, k, 2k, ... and each cell's last step, in long format."""
    cells = grid.cells(params.load(COMMITTED).train)[:2]
    traces = {cells[0].name: hand_trace([1.0] * 8), cells[1].name: hand_trace([1.0] * 3)}

    got = compare.curves(cells, traces, stride=3)

    assert list(got.columns) == ["cell", "step", "loss", "grad_norm"]
    assert got.groupby("cell", sort=False)["step"].apply(list).to_dict() == {
        cells[0].name: [0, 3, 6, 7],
        cells[1].name: [0, 2],
    }


def test_curves_with_stride_1_keep_every_step() -> None:
    """At stride 1 curves holds every row of every trace."""
    cells = grid.cells(params.load(COMMITTED).train)[:2]
    traces = {c.name: hand_trace([3.0, 2.0, 1.0]) for c in cells}

    assert len(compare.curves(cells, traces, stride=1)) == 6


def test_environment_is_a_section_with_a_row_per_field() -> None:
    """environment renders a heading and a field | value row per key, lists joined."""
    fingerprint = {"torch": "2.13.0+cpu", "threads": 1, "deterministic": True, "cpu_flags": ["avx"]}

    lines = compare.environment(fingerprint | {"none": []}).splitlines()

    assert lines[:2] == ["## Environment", ""]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[4:]]
    assert rows == [
        ["torch", "2.13.0+cpu"],
        ["threads", "1"],
        ["deterministic", "true"],
        ["cpu_flags", "avx"],
        ["none", "none"],
    ]


def test_dvc_plots_of_curves_draw_a_line_per_cell_on_a_log_scale() -> None:
    """Each top-level plot in dvc.yaml, filled by DVC's renderer from .dvc/plots, draws
    curves.csv's `step` against its column on a log scale, coloured by cell, dashed by rev."""
    plots = {k: v for item in params.read_yaml(ROOT / "dvc.yaml")["plots"] for k, v in item.items()}
    rows = [
        {"cell": cell, "step": str(step), "loss": "0.5", "grad_norm": "2.0", "rev": "workspace"}
        for cell in ("mse-sgd-none", "l1-adam-norm")
        for step in (0, 10)
    ]
    assert set(plots) == {"loss", "grad_norm"}

    for name, plot in plots.items():
        assert plot["y"] == {"reports/curves.csv": name} and plot["x"] == "step"
        props = {"template": plot["template"], "template_dir": str(ROOT / ".dvc/plots")}
        renderer = VegaRenderer(rows, name, **props, x="step", y=name, title=plot["title"])
        spec = renderer.get_filled_template()

        assert spec["data"]["values"] == rows
        assert spec["encoding"]["x"]["field"] == "step"
        assert spec["encoding"]["y"]["field"] == name
        assert spec["encoding"]["y"]["scale"] == {"type": "log"}
        assert spec["encoding"]["color"]["field"] == "cell"
        assert spec["encoding"]["strokeDash"]["field"] == "rev"
        assert {t["field"] for t in spec["encoding"]["tooltip"]} == {"cell", "rev", "step", name}
        assert f"toNumber(datum['{name}'])" in json.dumps(spec["transform"])


def test_main_writes_every_output(project: Path, tmp_path: Path) -> None:
    """main writes the table, Markdown, curves and a PNG per loss (x2) and per cell."""
    run_compare(project, tmp_path)

    names = [c.name for c in grid.cells(params.load(project / "params.yaml").train)]
    table = pd.read_csv(tmp_path / "compare.csv")
    assert sorted(table["cell"]) == sorted(names)
    assert table["cell"].iloc[-1] == DIVERGING and table["diverged"].iloc[-1] != "no"
    table_md, environment_md = (tmp_path / "compare.md").read_text().split("\n\n", 1)
    assert len(table_md.splitlines()) == 2 + len(names)
    fingerprint = json.loads((project / "reports/env.json").read_text())
    assert environment_md.startswith("## Environment\n")
    assert "| torch " in environment_md and fingerprint["torch"] in environment_md
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert list(curves.columns) == ["cell", "step", "loss", "grad_norm"]
    metrics = json.loads((project / "reports/metrics.json").read_text())
    stride = params.load(project / "params.yaml").compare.curve_stride
    kept = {
        n: len({*range(0, m["steps_run"], stride), m["steps_run"] - 1}) for n, m in metrics.items()
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


def test_main_exits_2_naming_a_cell_missing_from_metrics(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A grid cell without a metrics entry: exit 2, stderr names it, no output is written."""

    def damage(root: Path) -> None:
        path = root / "reports/metrics.json"
        metrics = json.loads(path.read_text())
        del metrics["mse-adam-none"]
        path.write_text(json.dumps(metrics))

    err = exits_2_writing_nothing(project, tmp_path, capsys, damage)
    assert "mse-adam-none: no metrics entry" in err
