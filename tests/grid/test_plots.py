"""The figures: what a Curve holds, the panels and legend, and the files draw writes."""

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import grid, params
from pipeline.grid import plots


def hand_runs(p: params.Params, diverging: str) -> list[plots.Curve]:
    """A Curve per cell of the committed grid's mse and l1 cells: 3 steps from (0.5, 0.5)
    towards (2, 0); the `diverging` cell's path flies off to 1e30 instead."""
    runs = []
    for cell in grid.cells(p.train):
        if cell.loss not in ("mse", "l1"):
            continue
        far = 1e30 if cell.name == diverging else 2.0
        trace = pd.DataFrame(
            {
                "step": [0, 1, 2],
                "loss": [1.0, 0.1, 0.0],
                "weight": [1.0, 1.5, far],
                "bias": [0.3, 0.1, 0.0],
            }
        )
        runs.append(plots.Curve.of(cell, trace, (0.5, 0.5), cell.name == diverging))
    return runs


def test_run_path_starts_at_the_initial_point(committed: params.Params) -> None:
    """Curve.of puts (weight, bias) before the first step ahead of the trace's rows."""
    cell = grid.cells(committed.train)[0]
    trace = pd.DataFrame(
        {"step": [0, 1], "loss": [2.0, 1.0], "weight": [1.0, 1.5], "bias": [0.2, 0.1]}
    )

    run = plots.Curve.of(cell, trace, (0.5, 0.4), diverged=False)

    assert run.path.tolist() == [[0.5, 0.4], [1.0, 0.2], [1.5, 0.1]]
    assert run.steps.tolist() == [0.0, 1.0] and run.loss.tolist() == [2.0, 1.0]


def test_loss_figure_has_a_panel_per_clip_and_a_legend_entry_per_optimizer(
    committed: params.Params,
) -> None:
    """One log-scale subplot per clipping mode in grid order; one legend entry per optimizer."""
    runs = [r for r in hand_runs(committed, "") if r.cell.loss == "mse"]
    g = committed.train.grid

    fig = plots.loss_figure(runs, threshold=1e-4)

    assert [ax.get_title() for ax in fig.axes] == [f"clip: {c}" for c in g.clips]
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == g.optimizers


def test_draw_writes_two_figures_per_loss_and_a_png_per_cell(
    committed: params.Params, tmp_path: Path
) -> None:
    """draw writes loss_<loss>.png, trajectory_<loss>.png and cells/<cell>.png, even with a
    path that diverges."""
    runs = hand_runs(committed, diverging="mse-sgd-none")
    data = (np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]))

    plots.draw(tmp_path, runs, data, (2.0, 0.0), threshold=1e-4)

    want = {f"{kind}_{loss}.png" for kind in ("loss", "trajectory") for loss in ("mse", "l1")}
    want |= {f"cells/{r.cell.name}.png" for r in runs}
    written = {str(f.relative_to(tmp_path)) for f in tmp_path.rglob("*.png")}
    assert written == want
