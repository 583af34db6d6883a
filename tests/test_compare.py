"""Stage `compare` and its plots: the table, its Markdown, curves.csv and the PNGs."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline import atomic, compare, generate, grid, model, params, plots, train

COMMITTED = Path(__file__).resolve().parents[1] / "params.yaml"
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
    """A folder holding params.yaml, data/points.csv, traces/ and reports/metrics.json."""
    root = tmp_path_factory.mktemp("project")
    p, data = small_params(root), root / "data/points.csv"
    generate.main(argv(params=p, out=data))
    train.main(
        argv(params=p, data=data, traces=root / "traces", metrics=root / "reports/metrics.json")
    )
    return root


def run_compare(project: Path, out: Path) -> None:
    inputs = {"params": project / "params.yaml", "traces": project / "traces"}
    inputs |= {"metrics": project / "reports/metrics.json", "data": project / "data/points.csv"}
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


def test_surfaces_match_the_torch_losses() -> None:
    """Each numpy surface equals its torch.nn loss (mean over points), params' kwargs."""
    p = params.load(COMMITTED).train.losses
    rng = np.random.default_rng(0)
    prediction, target = rng.normal(0, 2, (50, 7)), rng.normal(0, 2, 7)
    assert set(plots.SURFACES) == set(model.LOSSES)
    for name, surface in plots.SURFACES.items():
        kwargs = getattr(p, name).model_dump()
        ours = surface(prediction - target, **kwargs).mean(axis=-1)
        theirs = model.make_loss(name, {**kwargs, "reduction": "none"})(
            torch.tensor(prediction), torch.tensor(target).expand(50, 7)
        ).mean(dim=-1)
        torch.testing.assert_close(torch.tensor(ours), theirs, rtol=1e-12, atol=1e-12)


def test_main_writes_every_output(project: Path, tmp_path: Path) -> None:
    """main writes the table, Markdown, curves and a PNG per loss (x2) and per cell."""
    run_compare(project, tmp_path)

    names = [c.name for c in grid.cells(params.load(project / "params.yaml").train)]
    table = pd.read_csv(tmp_path / "compare.csv")
    assert sorted(table["cell"]) == sorted(names)
    assert table["cell"].iloc[-1] == DIVERGING and table["diverged"].iloc[-1] != "no"
    assert len((tmp_path / "compare.md").read_text().splitlines()) == 2 + len(names)
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert list(curves.columns) == ["cell", "step", "loss", "grad_norm"]
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert curves.groupby("cell").size().to_dict() == {n: metrics[n]["steps_run"] for n in names}
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


def test_main_exits_2_naming_a_missing_trace_and_writes_nothing(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A grid cell without a trace file: exit 2, stderr names it, no output is written."""
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    (copy / "traces" / "l1-adam-norm.csv").unlink()
    out = tmp_path / "out"

    with pytest.raises(SystemExit) as exit_info:
        run_compare(copy, out)

    assert exit_info.value.code == params.EXIT_BAD_INPUT
    assert "l1-adam-norm" in capsys.readouterr().err
    assert not out.exists()


def test_main_exits_2_naming_a_cell_missing_from_metrics(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A grid cell without a metrics entry: exit 2, stderr names it, no output is written."""
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    metrics_path = copy / "reports/metrics.json"
    metrics = json.loads(metrics_path.read_text())
    del metrics["mse-adam-none"]
    metrics_path.write_text(json.dumps(metrics))
    out = tmp_path / "out"

    with pytest.raises(SystemExit) as exit_info:
        run_compare(copy, out)

    assert exit_info.value.code == params.EXIT_BAD_INPUT
    assert "mse-adam-none: no metrics entry" in capsys.readouterr().err
    assert not out.exists()
