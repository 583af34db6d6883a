"""The grid's comparison (pipeline.grid.ranking): first steps below a threshold, the
ranking and its Markdown, curves.csv and the environment section, on hand-made cells."""

import math
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import grid, params
from pipeline.files.digest import sha
from pipeline.grid import ranking
from pipeline.grid.manifest import Entry, Manifest
from pipeline.grid.trace import Measures
from tests.conftest import ROOT

COMMITTED = ROOT / "params.yaml"


def hand_cells(tmp_path: Path) -> list[grid.Cell]:
    """The cells of a 2 x 2 x 2 grid (mse, l1 x sgd, adam x none, norm) of 30 steps."""
    data = params.read_yaml(COMMITTED)
    assert isinstance(data, dict)
    data["train"]["steps"] = 30
    grid_ = {"losses": ["mse", "l1"], "optimizers": ["sgd", "adam"], "clips": ["none", "norm"]}
    data["train"]["grid"] = {**grid_, "seeds": [42]}
    return grid.cells(params.parse(data).train)


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
    assert ranking.first_below(trace, 0.1) == 2


def test_first_below_is_never_when_no_loss_falls_below() -> None:
    """first_below is "never" when no step's loss is below the threshold."""
    assert ranking.first_below(hand_trace([5.0, 0.5, 0.2]), 0.1) == "never"


def test_ranking_puts_diverged_cells_last_then_orders_by_rank_then_first_below(
    tmp_path: Path,
) -> None:
    """Diverged cells share the last rank even with the lowest loss; the rest rank by
    distance to the generating line, and rows of one rank are listed by first_below."""
    cells = hand_cells(tmp_path)
    traces = {c.name: hand_trace([1.0, 0.5]) for c in cells}
    measures = {c.name: hand_measures(0.5, 1.0, None) for c in cells}
    measures["mse-sgd-none"] = hand_measures(None, math.inf, 1)
    measures["l1-adam-norm"] = hand_measures(0.0, 5.0, 3)
    measures["mse-adam-norm"] = hand_measures(0.1, 0.3, None)
    measures["l1-sgd-none"] = hand_measures(0.1, 0.2, None)
    traces["mse-adam-norm"] = hand_trace([1.0, 1e-5])  # first below 1e-4 at step 1

    table = ranking.ranked(hand_manifest(cells, measures), traces, 1e-4, tie=0.15)

    # 0.2 and 0.3 are within the tie: one rank, listed by first_below (1 before never)
    assert list(table["cell"][:2]) == ["mse-adam-norm", "l1-sgd-none"]
    assert list(table["rank"]) == [1, 1, 3, 3, 3, 3, 7, 7]
    assert list(table["cell"][-2:]) == ["l1-adam-norm", "mse-sgd-none"]
    rest = list(table["cell"][2:-2])
    assert rest == sorted(rest)
    assert list(table["diverged"][-2:]) == ["step 3 (loss)", "step 1 (loss)"]
    assert list(table.columns) == [
        "rank",
        "cell",
        "dist_to_optimum",
        "final_loss",
        "final_weight",
        "final_bias",
        "first_below",
        "max_grad_norm",
        "clip_fraction",
        "diverged",
        "loss",
        "optimizer",
        "clip",
        "seed",
    ]


def test_rank_is_one_plus_the_cells_nearer_by_more_than_the_tie() -> None:
    """Against a direct count: rank_i = 1 + #{j ok: d_j < d_i - tie}; failed cells last."""
    rng = np.random.default_rng(0)
    d = np.abs(rng.normal(0, 1e-6, 50))
    failed = rng.random(50) < 0.1
    got = ranking.ranks(d, failed, 1e-6)
    ok = d[~failed]
    last = int((~failed).sum()) + 1
    want = [last if f else 1 + int((ok < di - 1e-6).sum()) for di, f in zip(d, failed, strict=True)]
    assert got.tolist() == want
    assert (
        ranking.ranks(d, np.zeros(50, bool), 0.0).tolist()
        == (1 + np.argsort(np.argsort(d))).tolist()
    )  # no tie: the plain order


def test_markdown_has_a_header_a_rule_and_one_row_per_cell(tmp_path: Path) -> None:
    """frame_table gives header, rule and one `|`-delimited row per cell, numbers to 4 digits."""
    cells = hand_cells(tmp_path)
    traces = {c.name: hand_trace([1.0, 0.5]) for c in cells}
    measures = {c.name: hand_measures(0.123456, 1.0, None) for c in cells}
    measures[cells[0].name] = hand_measures(None, 2.0, 0)

    table = ranking.ranked(hand_manifest(cells, measures), traces, 1e-4, 0.0)
    lines = ranking.frame_table(table).splitlines()

    assert len(lines) == 2 + len(cells)
    assert set(lines[1]) <= {"|", "-", ":", " "}
    assert [line.split("|")[2].strip() for line in lines[2:]] == [
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

    got = ranking.curves(trained, traces, stride=3)

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

    assert len(ranking.curves(trained, traces, stride=1)) == 6


def test_environment_is_a_section_with_a_row_per_field() -> None:
    """environment renders a heading and a field | value row per key, lists joined."""
    fingerprint = {"torch": "2.13.0+cpu", "threads": 1, "deterministic": True, "cpu_flags": ["avx"]}

    lines = ranking.environment(fingerprint | {"none": []}).splitlines()

    assert lines[:2] == ["## Environment (what decides the numbers)", ""]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[4:]]
    assert rows == [
        ["torch", "2.13.0+cpu"],
        ["threads", "1"],
        ["deterministic", "true"],
        ["cpu_flags", "avx"],
        ["none", "none"],
    ]


# --- what the publish stage prints of it (ranking.top) ---
def test_top_fits_100_columns_and_names_its_measures() -> None:
    """Long cell names and the legend still fit a 100-column terminal; the rows are the
    ranking's first, with rank, distance, the secondary measure and the ranking's size."""
    measures = {"final_loss": 1.5e-12, "final_weight": 2.0, "final_bias": -2.5e-7}
    measures |= {"max_grad_norm": 8.843, "clip_fraction": 0.125, "diverged": "no"}
    settings = {"loss": "smoothl1", "optimizer": "nesterov", "clip": "handnorm"}
    rows = [
        {"rank": 1, "cell": f"smoothl1-nesterov-handnorm-s{i:04d}", "dist_to_optimum": 1e-7 * i}
        | measures
        | {"first_below": 60 + i, **settings, "seed": i}
        for i in range(12)
    ]
    text = ranking.report(pd.DataFrame(rows), {"torch": "2.13.0"}, "abc", 1e-4, 1e-6)

    out = ranking.top(text, Path("reports/compare.md"))

    lines = out.splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[1].split() == list(ranking.TOP_COLUMNS)
    assert [line.split()[1] for line in lines[2:7]] == [r["cell"] for r in rows[:5]]
    words = " ".join(out.split())  # as read, across the wrapped lines
    assert "within 1e-06" in words and "by `first_below`" in words and "All 12 cells" in words
