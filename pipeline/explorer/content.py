"""Everything the explorer page shows, gathered from the pipeline's outputs: the runs
(pipeline.explorer.sources, .replay), their data sets, each data set's minimiser and
curvature per loss (pipeline.explorer.minima), the tutorial's step as the walkthrough
checked it, and what the rate map needs (pipeline.explorer.rates)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.engine import regression
from pipeline.explorer import rates, replay, sources
from pipeline.explorer.pack import Run, Runs
from pipeline.files import inputs
from pipeline.grid import data, trace
from pipeline.grid.manifest import Manifest

if TYPE_CHECKING:
    import pandas as pd

MOMENTA = np.round(np.linspace(0.0, 0.99, 100), 4)  # the stability edges' momentum axis
SGD_SETTINGS = ("momentum", "dampening", "weight_decay")  # what the rate's closed form takes
CELL_COLUMNS = [  # what the page needs of the study's cells table (it may hold more)
    *sources.KEYS, "part", "lr_kind", "engine", "init_weight", "init_bias", "final_weight",
    "final_bias", "diverged_step", "loss_param", "target_weight", "target_bias", "line_weight",
    "line_bias", "steps", "dtype", "batch_size", "momentum", "dampening", "weight_decay",
]  # fmt: skip
TRACE_COLUMNS = ["part", *sources.KEYS, "step", "weight", "bias"]


@dataclass(frozen=True)
class Inputs:
    """The outputs the page is made from (their paths, as dvc.yaml names them)."""

    traces: Path  # train's folder: a trace per cell, manifest.json
    points: Path  # the grid's data
    scenarios: Path  # the study's data
    cells: Path  # the study's cells.parquet
    study_traces: Path  # the study's traces.parquet
    walkthrough: Path  # walkthrough.json


def tutorial_run(doc: dict, steps: int, surfaces: sources.Surfaces, where: Path) -> Run:
    """The tutorial's own run (walkthrough.json's seed and lr; MSE, plain SGD, float32),
    every step, replayed; its start and first gradients checked against the walkthrough."""
    from pipeline.engine.cells import Cells

    seed, lr = int(doc["seed"]), float(doc["lr"])
    cells = Cells.of(loss="mse", optimizer="sgd", clip="none", lr=lr, seed=seed, weight_decay=0.0)
    x = np.array([data.TUTORIAL_X])
    y = data.TUTORIAL_LINE[0] * x
    done = replay.train(cells, x, y, steps, "float32")
    replay.check_tutorial(doc, done, str(where))
    stop = int(done.diverged_step[0])
    kept = steps if stop < 0 else stop
    values = np.column_stack([np.arange(kept, dtype=np.float32), done.trace[0, :kept]])
    dataset = surfaces.datasets.add(x[0], y[0])
    return Run(
        kind="tutorial", scenario="tutorial", loss="mse", optimizer="sgd", clip="none", lr=lr,
        seed=seed, dataset=dataset, surface=surfaces.add(dataset, "mse"),
        initial=(float(done.initial[0, 0]), float(done.initial[0, 1])),
        columns=("step", *regression.TRACE), values=values, name="the tutorial",
        diverged_step=None if stop < 0 else stop,
    )  # fmt: skip


def rate_runs(
    cells: pd.DataFrame, xy: dict[tuple[str, int], tuple[list, list]],
    surfaces: sources.Surfaces, keep: list[int],
) -> list[Run]:  # fmt: skip
    """The rate map's measured runs, replayed per scenario, each checked against its row,
    at steps `keep`, with its measured rate and the closed form's at its setting."""
    runs = []
    for scenario, part in replay.rate_cells(cells).groupby("scenario", sort=True):
        seeds = sorted(s for (name, s) in xy if name == scenario)
        x, y = (np.array([xy[(scenario, s)][i] for s in seeds]) for i in (0, 1))
        steps, dtype = int(part["steps"].iloc[0]), str(part["dtype"].iloc[0])
        batch = int(part["batch_size"].iloc[0])
        engine = str(part["engine"].iloc[0])  # the study trains every part with one
        done = replay.train(replay.cells_of(part, seeds), x, y, steps, dtype, batch, engine)
        replay.check_finals(part, done, "reports/study/cells.parquet")
        of_seed = {s: surfaces.datasets.add(*xy[(str(scenario), s)]) for s in seeds}
        datasets = [of_seed[s] for s in part["seed"].tolist()]
        found = [
            surfaces.add(d, loss, param)
            for d, loss, param in zip(
                datasets, part["loss"].tolist(), part["loss_param"].tolist(), strict=True
            )
        ]
        target = part[["target_weight", "target_bias"]].to_numpy(np.float64)
        w = np.concatenate([done.initial[:, :1], done.trace[:, :, -2]], axis=1)
        b = np.concatenate([done.initial[:, 1:], done.trace[:, :, -1]], axis=1)
        errors = np.hypot(w - target[:, :1], b - target[:, 1:])
        measured = rates.measured(errors, rates.floor(target, dtype))
        low, high = np.array([surfaces.minima[f].eigenvalues for f in found]).T
        eigen = [low, high]
        lr, mu, damp, decay = (
            part[k].to_numpy(np.float64) for k in ("lr", "momentum", "dampening", "weight_decay")
        )
        rho = np.where(
            part["optimizer"] == "nesterov",
            rates.rate(lr, mu, eigen, True, 0.0, decay),
            rates.rate(lr, mu, eigen, False, damp, decay),
        )
        for i, row in enumerate(part.itertuples(index=False)):
            stop = int(done.diverged_step[i])
            runs.append(
                Run(
                    kind="replay",
                    scenario=str(scenario),
                    loss=str(row.loss),
                    optimizer=str(row.optimizer),
                    clip="none",
                    lr=float(row.lr),
                    seed=int(row.seed),
                    dataset=datasets[i],
                    surface=found[i],
                    initial=(float(done.initial[i, 0]), float(done.initial[i, 1])),
                    columns=sources.PATH_COLUMNS,
                    values=done.trace[i][keep][:, -2:],
                    name=f"{scenario}-{row.loss}-{row.optimizer}-none",
                    diverged_step=None if stop < 0 else stop,
                    rate=float(measured[i]),
                    rho=float(rho[i]),
                )
            )
    return runs


def rate_map(cells: pd.DataFrame, lr: tuple[float, float]) -> dict[str, object]:
    """What the page's rate map takes beside the Hessian's eigenvalues: the lr axis (the
    study's grid), the settings of gradient descent, heavy ball and Nesterov as the study
    ran them (torch's defaults, zeros, for one it did not run), and the stability edges'
    lr * lam_max over momentum (the closed form's)."""
    settings = {}
    for name in replay.RATE_OPTIMIZERS:
        rows = cells[cells["optimizer"] == name]
        found = {k: float(rows[k].iloc[0]) if len(rows) else 0.0 for k in SGD_SETTINGS}
        settings[name] = found
    damp = settings["momentum"]["dampening"]
    edges = {
        "heavy": [rates.edge_factor(float(mu), False, damp) for mu in MOMENTA],
        "nesterov": [rates.edge_factor(float(mu), True) for mu in MOMENTA],
    }
    return {"lr": list(lr), "momenta": MOMENTA.tolist(), "edges": edges, "settings": settings}


def build(i: Inputs, points: int) -> tuple[dict[str, object], Runs]:
    """(the page's index of everything but the runs' tables, the runs)."""
    import pandas as pd

    trained = Manifest.read(i.traces)
    x, y = data.read_points(i.points)
    frames = inputs.read_traces(i.traces, [c.name for c in trained.cells()])
    walk = inputs.read_json(i.walkthrough, "walkthrough")
    cells = inputs.read_table(i.cells, "study")[CELL_COLUMNS]
    traces = pd.read_parquet(i.study_traces, columns=TRACE_COLUMNS)
    xy = sources.study_data(i.scenarios)

    surfaces = sources.Surfaces(sources.Datasets())
    grid_data = surfaces.datasets.add(x, y)
    tutorial_data = (list(data.TUTORIAL_X), [data.TUTORIAL_LINE[0] * v for v in data.TUTORIAL_X])
    same = (list(x), list(y)) == tutorial_data
    tune = cells[cells["part"] == "tune"]
    study_steps = int(tune["steps"].max())
    steps = trained.cells()[0].steps if trained.entries else study_steps
    spaced = sources.study_steps(traces, points)
    keep = trace.history_steps(study_steps, points)
    runs = Runs(steps={"study": spaced.tolist(), "replay": keep})
    for run in [
        tutorial_run(walk, steps, surfaces, i.walkthrough),  # type: ignore[arg-type]
        *sources.grid_runs(frames, trained, "tutorial" if same else "grid", grid_data, surfaces),
        *sources.study_runs(traces, cells, xy, surfaces, spaced),
        *rate_runs(cells, xy, surfaces, keep),
    ]:
        runs.add(run)
    report = cells[cells["part"] == "report"]
    lines = report.groupby("scenario")[["line_weight", "line_bias"]].first()
    scenario_lines = {
        str(k): [float(v["line_weight"]), float(v["line_bias"])] for k, v in lines.iterrows()
    }
    scenario_lines |= {"tutorial": list(data.TUTORIAL_LINE)}
    if not same:
        scenario_lines["grid"] = list(trained.optimum)
    start = {"scenario": "tutorial", "loss": "mse", "optimizer": "sgd", "clip": "none"}
    index = {
        "start": start | {"lr": float(walk["lr"]), "seed": int(walk["seed"])},  # type: ignore[index]
        "walkthrough": walk,
        "datasets": surfaces.datasets.to_json(),
        "surfaces": surfaces.to_json(),
        "lines": scenario_lines,
        "rate_map": rate_map(cells, (float(tune["lr"].min()), float(tune["lr"].max()))),
        "study_steps": study_steps,
    }
    return index, runs


def kinds(runs: Runs, study_steps: int) -> dict[str, str]:
    """What each kind of run on the page is, with how many there are."""
    count = {
        k: sum(r.kind == k for r in runs.runs) for k in ("grid", "tutorial", "study", "replay")
    }
    steps = {k: len(v) for k, v in runs.steps.items()}
    return {
        "tutorial": "The tutorial's run: the walkthrough's seed and lr, MSE, plain SGD, every "
        "step, re-run by the study's batched engine (bit-identical to torch.optim); its start "
        "and first gradients are checked against reports/walkthrough/walkthrough.json.",
        "grid": f"The grid: its {count['grid']} cells (traces/), every step, every value "
        "the trace recorded: loss, gradient norm, .grad before and after clipping, the "
        "optimizer's state after the step, weight and bias.",
        "study": f"The study: the {count['study']} reporting cells at each configuration's "
        f"tuned lr (reports/study/traces.parquet): weight and bias at {steps.get('study', 0)} "
        f"log-spaced steps of {study_steps} (the study keeps no gradients).",
        "replay": f"The rate map's runs: gradient descent, heavy ball and Nesterov without "
        f"clipping at every lr of the study's grid on its tuning seeds ({count['replay']} "
        "cells of reports/study/cells.parquet), re-run by the study's engine and checked "
        "against their recorded ends bit for bit: weight and bias at "
        f"{steps.get('replay', 0)} log-spaced steps, and the rate each measured.",
    }
