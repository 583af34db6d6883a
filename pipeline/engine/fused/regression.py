"""The fused engine for nn.Linear(1, 1): pipeline.engine.regression.train's cells, data and
measures, trained by the fused kernel (pipeline.engine.fused.linear), the same Result.

Against the exact engine it agrees within rounding on well-conditioned cells (its sqrt,
exp and log are IEEE's or C's; torch's float32 sqrt is not: tests/engine/test_fused.py
states where and how much), and a cell's bits do not depend on its batch, block, chunk or
the machine's vector width. Only the chosen steps of the recorded cells are traced.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from pipeline.engine import ops, regression
from pipeline.engine import target as target_
from pipeline.engine.cells import REGRESSION, Cells
from pipeline.engine.fused import blocks, linear, loop
from pipeline.losses import LOSSES

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]  # or float32: the training dtype
FUSED_LOSSES = [LOSSES[n].fused for n in REGRESSION]


def refuse_missing(cells: Cells, fused: list[object]) -> None:
    """ValueError naming the members of `cells` without a fused form."""
    if gaps := blocks.missing(cells, fused):  # type: ignore[arg-type]
        raise ValueError(
            f"the fused engine has no form of {', '.join(gaps)}: add its fused form to its "
            "module, or train these cells with the exact engine (study.engine: exact)"
        )


def tracing(steps: int, trace_steps: npt.ArrayLike | None) -> tuple[Ints, int]:
    """Per step its slot in the trace (-1: not traced), and the number of slots."""
    chosen = np.arange(steps) if trace_steps is None else np.asarray(trace_steps, np.int64)
    chosen = chosen[(chosen >= 0) & (chosen < steps)]
    at = np.full(steps, -1, dtype=np.int64)
    at[chosen] = np.arange(len(chosen))
    return at, len(chosen)


def train(
    cells: Cells,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    steps: int,
    dtype: torch.dtype = torch.float32,
    *,
    record: npt.ArrayLike = (),
    trace_steps: npt.ArrayLike | None = None,
    target: npt.ArrayLike | None = None,
    tol: npt.ArrayLike = 0.0,
    batch_size: int = 0,
    start: npt.ArrayLike | None = None,
    block: int = blocks.BLOCK,
) -> regression.Result:
    """pipeline.engine.regression.train, fused. `record`: the cells traced, at the steps
    `trace_steps` (distinct, ascending; default every step): Result.trace is (recorded,
    len(trace_steps), 9). Result.strided is empty. `block`: cells per block, at most
    blocks.BLOCK (a cell's bits do not depend on it)."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    xt, yt = (regression._points(v, dtype).numpy() for v in (x, y))  # type: ignore[arg-type]
    if xt.shape != yt.shape or len(cells) == 0 or cells.dataset.max() >= len(xt) or steps < 0:
        raise ValueError(f"x {xt.shape}, y {yt.shape}: one row per dataset")
    if batch_size > xt.shape[1]:
        raise ValueError(f"batch_size {batch_size}: more than the {xt.shape[1]} points")
    refuse_missing(cells, FUSED_LOSSES)  # type: ignore[arg-type]
    n_cells, n_full = len(cells), xt.shape[1]
    n = batch_size or n_full
    b = blocks.layout(cells, min(block, blocks.BLOCK))
    ordered = cells.take(b.order)
    position = np.argsort(b.order)  # the sorted position of each cell given
    given = regression._sorted(start, n_cells, b.order, 2)
    p0 = (
        regression.initial_parameters(ordered.seed, dtype).numpy()
        if given is None
        else np.ascontiguousarray(given.T).astype(np_dtype)
    )
    param = ordered.settings["loss_param"]
    coefficients = [
        blocks.coefficients(ordered.loss, FUSED_LOSSES, param, m, np_dtype)  # type: ignore[arg-type]
        for m in (n, n_full)
    ]
    lanes = ops.lanes(dtype)
    program, root = loop.program(ops.sum_order(n, lanes), n)
    program_full, root_full = loop.program(ops.sum_order(n_full, lanes), n_full)
    aim = target is not None
    goal = target_.padded((0.0, 0.0) if target is None else target, n_cells)[b.order]
    rows_of_goal = np.concatenate(
        [goal.reshape(n_cells, -1).T, target_.vertices(goal)[None].astype(np.float64)]
    )  # vertex k's w and b in rows 2k, 2k + 1; the vertex count last
    tols = regression._sorted(tol, n_cells, b.order, 0)
    assert tols is not None
    trace_at, slots = tracing(steps, trace_steps)
    recorded = np.asarray(record, dtype=np.int64).reshape(-1)
    traced = np.full(n_cells, -1, dtype=np.int64)
    traced[position[recorded]] = np.arange(len(recorded))
    p = np.empty((2, n_cells), np_dtype)
    kept, clips = np.zeros(n_cells, np.int64), np.zeros(n_cells, np.int64)
    reached, last_out = np.full(n_cells, -1, np.int64), np.full(n_cells, -1, np.int64)
    after, inside = np.zeros(n_cells, np.int64), np.zeros(n_cells, np.int64)
    excursion = np.full(n_cells, -1.0)
    top: Floats = np.zeros(n_cells, np_dtype)
    final_loss: Floats = np.empty(n_cells, np_dtype)
    finite_grads = np.empty(n_cells, np.bool_)
    trace = np.full((len(recorded), slots, linear.WIDTH), np.nan, np_dtype)
    rows = (*(len(c) for c in coefficients), len(b.h), len(b.h), len(b.clip))
    linear.run(
        b.table, b.flags, xt, yt, ordered.dataset, ordered.seed, batch_size, p0,
        *coefficients, np.array([n, n_full], np_dtype), b.h, b.h.astype(np_dtype),
        b.clip.astype(np_dtype), rows_of_goal.astype(np_dtype),
        tols.astype(np_dtype), aim, steps, program, root, program_full, root_full,
        trace_at, traced, p, kept, clips, top, reached, last_out, after, inside, excursion,
        final_loss, finite_grads, trace,
        *linear.scratch(n, n_full, rows, np_dtype, len(rows_of_goal)),
    )  # fmt: skip
    u = position
    kept_u = kept[u]
    final, init = p[:, u], p0[:, u]
    m = target_.summarise(
        reached, last_out, after, inside, excursion,
        target_.final_distance(p, goal.astype(np_dtype).astype(np.float64)), steps, kept_u, u,
    ) if aim else target_.none(n_cells)  # fmt: skip
    return regression.Result(
        init_weight=init[0],
        init_bias=init[1],
        final_weight=final[0],
        final_bias=final[1],
        final_loss=final_loss[u],
        **regression.divergence(kept_u, steps, final_loss[u], finite_grads[u]),
        steps_run=kept_u,
        max_grad_norm=top[u],
        clip_fraction=clips[u] / np.maximum(kept_u, 1),
        steps_to_target=m.reached,
        steps_sustained=m.sustained,
        touch_share=m.touch_share,
        excursion=m.excursion,
        target_error=m.error,
        trace=trace,
        strided=np.empty((n_cells, 0, linear.WIDTH), np_dtype),
    )
