"""Training the study's parts in chunks, and the per-cell tables their results make.

A chunk is a slice of a Part's cells and the engine that trains it: the fused kernel
(pipeline.engine.fused, the study's default) or the exact one (pipeline.engine.regression,
bit-identical to torch.optim: the headline grid's twins). `train_chunk` is the function
every worker runs (pipeline.run.cluster sends it wherever the chunk runs). It returns
columns: one row per cell, its settings and measures, and, for chunks asked to, the cells'
values at chosen steps. The caller writes them as they arrive.
"""

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline import polygon
from pipeline.engine import classification, regression
from pipeline.engine.cells import COLUMNS
from pipeline.study.classes import ClassPart
from pipeline.study.design import Part

Columns = dict[str, npt.NDArray[np.generic]]
# the tables' setting columns: this order first (readers and the drift baseline know it),
# then any a new loss, optimizer or clipping mode adds (label_smoothing: classification's)
ORDER = (
    "lr", "loss_param", "momentum", "dampening", "weight_decay", "beta1", "beta2", "eps",
    "alpha", "lr_decay", "initial_accumulator_value", "max_norm", "norm_type", "clip_value",
    "amsgrad", "centered",
)  # fmt: skip
SETTINGS = (*ORDER, *(k for k in COLUMNS if k not in ORDER and k != "label_smoothing"))
MEASURES = (  # regression.Result's per-cell measures
    "init_weight", "init_bias", "final_weight", "final_bias", "final_loss", "diverged_step",
    "steps_run", "max_grad_norm", "clip_fraction", "target_error", "steps_sustained",
    "touch_share", "excursion",
)  # fmt: skip
FIRST_TOUCH = "steps_first_touch"  # the engines' steps_to_target: an oracle's stopping time


@dataclass(frozen=True)
class Chunk:
    part: Part  # the cells of this chunk only
    trace_steps: npt.NDArray[np.int64] | None = None  # record these steps of every cell
    engine: str = "fused"  # or "exact" (params: study.engine)


def chunks(
    parts: list[Part],
    size: int,
    trace_steps: npt.NDArray[np.int64] | None = None,
    engine: str = "fused",
) -> list[Chunk]:
    """Every part cut into chunks of at most `size` cells, in order."""
    out = []
    for part in parts:
        for start in range(0, len(part), size):
            index = np.arange(start, min(start + size, len(part)))
            out.append(Chunk(take(part, index), trace_steps, engine))
    return out


def take(part: Part, index: npt.NDArray[np.int64]) -> Part:
    """The part's cells at `index`, with their targets, labels and lines."""
    return replace(
        part,
        cells=part.cells.take(index),
        target=part.target[index],
        tol=part.tol[index],
        labels={k: v[index] for k, v in part.labels.items()},
        line=part.line[index],
        theory_lr=part.theory_lr[index],
        start=None if part.start is None else part.start[index],
    )


def train_chunk(chunk: Chunk) -> tuple[Columns, Columns | None]:
    """Train the chunk's cells: (their rows of the cells table, their trace rows or None)."""
    import torch

    p, steps = chunk.part, chunk.trace_steps
    dtype = getattr(torch, p.dtype)
    every = np.arange(len(p)) if steps is not None else ()
    given: dict[str, Any] = {
        "target": p.target, "tol": p.tol, "batch_size": p.batch_size, "start": p.start,
    }  # fmt: skip
    if chunk.engine == "fused":
        from pipeline.engine.fused import regression as fused

        result = fused.train(
            p.cells, p.x, p.y, p.steps, dtype, record=every, trace_steps=steps, **given
        )
    else:  # every step traced, then the chosen ones kept: trace_rows reads those
        result = regression.train(p.cells, p.x, p.y, p.steps, dtype, record=every, **given)
        if steps is not None:
            result = replace(result, trace=result.trace[:, steps[steps < p.steps]])
    rows = cell_rows(p, result, chunk.engine)
    traces = None if steps is None else trace_rows(p, result, steps)
    return rows, traces


def _labels(p: Part) -> Columns:
    n = len(p)
    return {
        "part": np.full(n, p.part),
        **{k: p.labels[k] for k in ("scenario", "loss", "optimizer", "clip")},
        **{k: p.labels.get(k, np.full(n, "")) for k in ("name", "lr_kind")},  # twin, report
        "seed": p.cells.seed,
    }


def cell_rows(p: Part, r: regression.Result, engine: str = "exact") -> Columns:
    """One row per cell: labels, settings, data and target (its first vertex, the set's
    width, its distance to the generating line), then the measures."""
    point = np.asarray(p.target[:, 0], dtype=np.float64)
    return {
        **_labels(p),
        **{k: p.cells.settings[k] for k in SETTINGS},
        "batch_size": np.full(len(p), p.batch_size),
        "steps": np.full(len(p), p.steps),
        "dtype": np.full(len(p), p.dtype),
        "engine": np.full(len(p), engine),
        "target_weight": point[:, 0],
        "target_bias": point[:, 1],
        "target_width": polygon.widths(p.target),
        "minimiser_error": polygon.distances(p.line, p.target),  # the loss's own fit
        "tol": p.tol,
        "theory_lr": p.theory_lr,
        "line_weight": p.line[:, 0],  # the line the data were drawn from
        "line_bias": p.line[:, 1],
        **{
            k: np.asarray(getattr(r, k)).astype(np.float64 if k not in INT else np.int64)
            for k in MEASURES
        },
        FIRST_TOUCH: np.asarray(r.steps_to_target, dtype=np.int64),
        "true_error": np.hypot(r.final_weight - p.line[:, 0], r.final_bias - p.line[:, 1]).astype(
            np.float64
        ),
        "diverged": (r.diverged_step >= 0).astype(np.int64),
        "diverged_reason": np.where(
            r.diverged_reason >= 0,
            np.array(regression.REASONS)[np.maximum(r.diverged_reason, 0)],
            "",
        ),
    }


INT = ("diverged_step", "steps_run", "steps_sustained")
VALUE = {"loss": "loss_value"}  # a trace's loss value, apart from the loss's name


def trace_rows(p: Part, r: regression.Result, steps: npt.NDArray[np.int64]) -> Columns:
    """Long format: per traced cell (all but those at the library's default lr) and chosen
    step it kept, its labels, the step, the engine's TRACE values (in the dtype trained)
    and its distance to the target after the step. r.trace holds the chosen steps."""
    steps = steps[steps < p.steps]
    traced = np.flatnonzero(p.labels.get("lr_kind", np.full(len(p), "")) != "default")
    cell, slot = (a.ravel() for a in np.meshgrid(traced, np.arange(len(steps)), indexing="ij"))
    step = steps[slot]
    kept = step < r.steps_run[cell]
    cell, step, slot = cell[kept], step[kept], slot[kept]
    flat = r.trace[cell, slot, :]  # (rows, 9)
    w, b = (flat[:, regression.TRACE.index(c)].astype(np.float64) for c in ("weight", "bias"))
    return {
        **{k: v[cell] for k, v in _labels(p).items()},
        "lr": p.cells.lr[cell],
        "step": step.astype(np.int32),
        **{VALUE.get(c, c): flat[:, i] for i, c in enumerate(regression.TRACE)},
        "error": polygon.distances(np.stack([w, b], axis=1), p.target[cell]).astype(flat.dtype),
    }


# --- classification ------------------------------------------------------------------------
CLASS_MEASURES = (  # classification.Result's per-cell measures
    "final_loss", "accuracy", "angle_deg", "diverged_step", "steps_run",
    "max_grad_norm", "clip_fraction", "steps_sustained",
)  # fmt: skip


def class_chunks(part: ClassPart, size: int) -> list[ClassPart]:
    """The part cut into chunks of at most `size` cells, in order."""
    return [
        replace(
            part,
            cells=part.cells.take(index),
            names={k: v[index] for k, v in part.names.items()},
        )
        for start in range(0, len(part), size)
        for index in [np.arange(start, min(start + size, len(part)))]
    ]


def train_class_chunk(p: ClassPart) -> Columns:
    """Train a chunk of classification cells: their rows of the classes table."""
    import torch

    dtype = getattr(torch, p.dtype)
    if p.engine == "fused":
        from pipeline.engine.fused import classification as fused

        r = fused.train(p.cells, p.x, p.labels, p.steps, dtype)
    else:
        r = classification.train(p.cells, p.x, p.labels, p.steps, dtype)
    n = len(p)
    return {
        "part": np.full(n, p.part),
        **{k: p.names[k] for k in ("scenario", "loss", "optimizer", "clip")},
        "lr_kind": p.names.get("lr_kind", np.full(n, "")),
        "seed": p.cells.seed,
        "label_smoothing": p.cells.settings["label_smoothing"],
        **{k: p.cells.settings[k] for k in SETTINGS if k != "loss_param"},
        "steps": np.full(n, p.steps),
        "dtype": np.full(n, p.dtype),
        **{
            k: np.asarray(getattr(r, k)).astype(np.int64 if k in INT else np.float64)
            for k in CLASS_MEASURES
        },
        FIRST_TOUCH: np.asarray(r.steps_to_target, dtype=np.int64),
        "diverged": (r.diverged_step >= 0).astype(np.int64),
    }
