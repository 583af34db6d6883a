"""The work params.yaml asks for, estimated before anything runs, against `env.budget`.

The env stage runs first on every `dvc repro`: it counts the grid's and the study's cells
and steps and estimates the peak memory of the stage that needs most (all its processes on
this machine), and refuses, one line each, what exceeds the budget, which params.yaml can
raise on purpose. Counting needs no data and no numpy: a few multiplications.

The rates and sizes below were measured on the 2-core machine of the README's Speed
section (medians; the estimate is meant to be within a factor of 2, not exact).
"""

import math
from dataclasses import dataclass
from pathlib import Path

from pipeline import params
from pipeline.optimizers import OPTIMIZERS

GRID_RATE = 2_500  # cell-steps/s of the grid's eager torch.optim loop, per process
STUDY_RATE = 4e6  # cell-steps/s of the batched engine (1.3-5.6 M at 10^4-10^6 cells)
PROCESS_MIB = 400  # a stage's process once torch, pandas and pyarrow are imported
STEP_KIB = 0.72  # a grid cell's trace held in memory, per step (rows, frame, CSV text)
TUNE_KIB = 1.3  # the study's process per tuning cell (its settings, labels, results)
REPORT_KIB = 2.2  # per reporting, edge or twin cell (with its data set)
TRACED_KIB = 0.2  # per traced step of a reporting cell, for the chunk in hand


@dataclass(frozen=True)
class Estimate:
    """What a params.yaml asks for."""

    grid_cells: int
    grid_steps: int  # per cell
    study_cells: int  # every part: tune, report, edges, twins, classification
    study_cell_steps: int
    memory_gib: float  # the stage that needs most, all its processes on this machine

    @property
    def grid_cell_steps(self) -> int:
        return self.grid_cells * self.grid_steps


def _tried(lr: params.LrGrid, optimizer: str, edges: bool) -> int:
    """How many lrs a configuration of `optimizer` is tuned on (rates.lrs): the log grid,
    the library's default unless it is on the grid, fractions of the stability edge."""
    exponents = lr.exponents()
    default = OPTIMIZERS[optimizer].default_lr
    k = round(math.log10(default) * lr.per_decade)
    on_grid = k in exponents and 10.0 ** (k / lr.per_decade) == default
    near = len(lr.near_edge) if edges and OPTIMIZERS[optimizer].edge is not None else 0
    return len(exponents) + (not on_grid) + near


def study_cells(p: params.Params) -> dict[str, int]:
    """The cells of each part of the study, as pipeline.study.design and .classes build
    them: tune, report, edge, twin, class_tune, class_report. An edge that does not exist
    on the data (L1's, with no curvature) is counted: an upper bound."""
    s = p.study
    scenarios, losses, optimizers, clips = (
        len(dict.fromkeys(names)) for names in (s.scenarios, s.losses, s.optimizers, s.clips)
    )
    classes = len(dict.fromkeys(s.classification.losses))
    unique = list(dict.fromkeys(s.optimizers))
    tune, report = len(s.seeds.tune), 2 * len(s.seeds.report)  # tuned and default lr
    edged = sum(OPTIMIZERS[o].edge is not None for o in unique)
    return {
        "tune": scenarios * losses * clips * tune * sum(_tried(s.lr, o, True) for o in unique),
        "report": scenarios * losses * optimizers * clips * report,
        "edge": scenarios
        * losses
        * edged
        * clips
        * (2 * round(s.stability.span / s.stability.step) + 1),
        "twin": grid_cells(p.train),
        "class_tune": classes * clips * tune * sum(_tried(s.lr, o, False) for o in unique),
        "class_report": classes * optimizers * clips * report,
    }


def grid_cells(train: params.TrainParams) -> int:
    """The grid's cells (pipeline.grid.cells): losses x optimizers x clips x seeds."""
    g = train.grid
    return math.prod(
        len(dict.fromkeys(names)) for names in (g.losses, g.optimizers, g.clips, g.seeds)
    )


def estimate(p: params.Params) -> Estimate:
    """The work and memory params `p` ask for."""
    parts = study_cells(p)
    tune = parts["tune"] + parts["class_tune"]
    report = parts["report"] + parts["edge"] + parts["twin"] + parts["class_report"]
    steps = {"edge": p.study.stability.steps, "twin": p.train.steps}
    cell_steps = sum(n * steps.get(part, p.study.steps) for part, n in parts.items())
    workers = p.env.workers
    mib = 1 / 1024
    grid_mib = workers * (PROCESS_MIB + p.train.steps * STEP_KIB * mib)
    chunk = min(p.study.chunk, max(tune, report))
    traced = chunk * min(p.study.trace_points, p.study.steps) * TRACED_KIB * mib
    study_mib = PROCESS_MIB + (tune * TUNE_KIB + report * REPORT_KIB) * mib + traced
    study_mib += (workers - 1) * (PROCESS_MIB + traced)  # each worker: a chunk at a time
    return Estimate(
        grid_cells(p.train),
        p.train.steps,
        tune + report,
        cell_steps,
        max(grid_mib, study_mib) / 1024,
    )


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.2g} s"


def problems(e: Estimate, b: params.Budget, workers: int) -> list[str]:
    """One line per figure of `e` over budget `b`: what is asked, the limit, the fix."""
    found = []
    raise_it = "or raise it on purpose"
    if e.grid_cell_steps > b.grid_cell_steps:
        took = _duration(e.grid_cell_steps / (GRID_RATE * workers))
        found.append(
            f"env.budget.grid_cell_steps = {b.grid_cell_steps:.3g}: the grid asks for "
            f"{e.grid_cells:,} cells x {e.grid_steps:,} steps = {e.grid_cell_steps:.3g} "
            f"cell-steps (about {took} here); lower train.steps or the grid, {raise_it}"
        )
    if e.study_cell_steps > b.study_cell_steps:
        took = _duration(e.study_cell_steps / STUDY_RATE)
        found.append(
            f"env.budget.study_cell_steps = {b.study_cell_steps:.3g}: the study asks for "
            f"{e.study_cells:,} cells, {e.study_cell_steps:.3g} cell-steps (about {took} "
            f"here); lower its lrs, seeds, scenarios or steps, {raise_it}"
        )
    if e.memory_gib > b.memory_gib:
        found.append(
            f"env.budget.memory_gib = {b.memory_gib:g}: the largest stage needs about "
            f"{e.memory_gib:.3g} GiB ({e.grid_cells:,} grid cells of {e.grid_steps:,} steps, "
            f"{e.study_cells:,} study cells, {workers} processes); lower them, {raise_it}"
        )
    return found


def checked(path: Path) -> dict[str, object]:
    """What the env stage's fingerprint takes from params.yaml (env.threads and
    env.deterministic), once all of it is valid and the work it asks for is within
    env.budget; else one line per problem and exit 2."""
    p = params.load_or_exit(path)
    if over := problems(estimate(p), p.env.budget, p.env.workers):
        params.refuse([f"error: {path}: {line}" for line in over], path)
    return {"threads": p.env.threads, "deterministic": p.env.deterministic}
