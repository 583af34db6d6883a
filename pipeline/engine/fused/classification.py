"""The fused engine for nn.Linear(2, 2) on two classes: pipeline.engine.classification.train's
cells, data and measures, trained by the fused kernel (pipeline.engine.fused.linear2), the
same Result (exp and log1p are the C library's; torch's are its own vector kernels)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from pipeline.engine import classification, ops
from pipeline.engine.cells import CLASSIFICATION, Cells
from pipeline.engine.fused import blocks, linear2, loop
from pipeline.engine.fused.regression import refuse_missing, tracing
from pipeline.losses import CLASS_LOSSES

Floats = npt.NDArray[np.float64]  # or float32: the training dtype
FUSED_LOSSES = [CLASS_LOSSES[n].fused for n in CLASSIFICATION]


def train(
    cells: Cells,
    x: npt.ArrayLike,
    labels: npt.ArrayLike,
    steps: int,
    dtype: torch.dtype = torch.float32,
    *,
    record: npt.ArrayLike = (),
    trace_steps: npt.ArrayLike | None = None,
) -> classification.Result:
    """pipeline.engine.classification.train, fused. `record`: the cells traced at the steps
    `trace_steps` (default every step): Result.trace is (recorded, len(trace_steps), 10).
    Result.strided is empty."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    xt, yt = (v.numpy() for v in classification._data(x, labels, dtype))  # type: ignore[arg-type]
    if cells.losses != CLASSIFICATION:
        raise ValueError(f"cells of the losses {cells.losses}, not {CLASSIFICATION}")
    if len(cells) == 0 or cells.dataset.max() >= len(xt) or steps < 0:
        raise ValueError(f"{len(cells)} cells, {len(xt)} datasets, {steps} steps")
    refuse_missing(cells, FUSED_LOSSES)  # type: ignore[arg-type]
    n_cells, n = len(cells), xt.shape[1]
    b = blocks.layout(cells)
    ordered = cells.take(b.order)
    position = np.argsort(b.order)
    p0 = classification.initial_parameters(ordered.seed, dtype).numpy()
    smoothing = ordered.settings["label_smoothing"]
    coefficients = blocks.coefficients(ordered.loss, FUSED_LOSSES, smoothing, n, np_dtype)  # type: ignore[arg-type]
    program, root = loop.program(ops.sum_order(n, ops.lanes(dtype)), n)
    trace_at, slots = tracing(steps, trace_steps)
    recorded = np.asarray(record, dtype=np.int64).reshape(-1)
    traced = np.full(n_cells, -1, dtype=np.int64)
    traced[position[recorded]] = np.arange(len(recorded))
    p = np.empty((linear2.ROWS, n_cells), np_dtype)
    kept, clips = np.zeros(n_cells, np.int64), np.zeros(n_cells, np.int64)
    reached, last_out = np.full(n_cells, -1, np.int64), np.full(n_cells, -1, np.int64)
    top: Floats = np.zeros(n_cells, np_dtype)
    loss: Floats = np.zeros(n_cells, np_dtype)
    accuracy: Floats = np.zeros(n_cells, np_dtype)
    finite_grads = np.empty(n_cells, np.bool_)
    trace = np.full((len(recorded), slots, linear2.WIDTH), np.nan, np_dtype)
    rows = (len(coefficients), len(b.h), len(b.h), len(b.clip))
    linear2.run(
        b.table, b.flags, xt, yt, ordered.dataset, p0, coefficients, np.array([n], np_dtype),
        b.h, b.h.astype(np_dtype), b.clip.astype(np_dtype), steps, program, root, trace_at,
        traced, p, kept, clips, top, reached, last_out, loss, accuracy, finite_grads, trace,
        *linear2.scratch(n, rows, np_dtype),
    )  # fmt: skip
    u = position
    kept_u, right = kept[u], accuracy[u] == 1
    first = np.where(right & (reached[u] < 0), kept_u, reached[u])  # at the final parameters
    final = p[:, u].T
    return classification.Result(
        init_params=p0[:, u].T,
        final_params=final,
        final_loss=loss[u],
        accuracy=accuracy[u],
        angle_deg=classification.angle_deg(final),
        steps_to_target=first,
        steps_sustained=np.where(right & (kept_u == steps), last_out[u] + 1, -1),
        **classification.divergence(kept_u, steps, loss[u], finite_grads[u]),
        steps_run=kept_u,
        max_grad_norm=top[u],
        clip_fraction=clips[u] / np.maximum(kept_u, 1),
        trace=trace,
        strided=np.empty((n_cells, 0, linear2.WIDTH), np_dtype),
    )
