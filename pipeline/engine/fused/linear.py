"""The fused kernel of nn.Linear(1, 1) under a regression loss: every block of cells
trained with the whole step loop inside (pipeline.engine.fused.regression calls it).

A step, per block: each point's error d = w x + b - y, the loss's fused point (term,
dL/dy_hat), dL/dw summed in point order as nn.Linear's backward does and the loss and
dL/db in torch.sum's order (a sum tree, loop.tree_sum), then the norm, the clipping form,
the rule's update, the checks, the counts and the target (pipeline.engine.regression's
measures, plus the sustained step: the last step spent outside tol).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pipeline.engine.cells import REGRESSION
from pipeline.engine.fused.blocks import BLOCK, LANES
from pipeline.engine.fused.compile import fma, jit, kernel
from pipeline.engine.fused.loop import (
    CLIP,
    UPDATE,
    finite,
    forwards,
    load,
    minibatch_index,
    settle,
    tree_sums,
)
from pipeline.losses import LOSSES

Array = Any  # a numpy array inside compiled code
SLOTS = 4  # state slots per parameter: the most any rule keeps (pipeline.optimizers)
WIDTH = 9  # a traced step's values: pipeline.engine.regression.TRACE


def _forward_of(point: Any) -> Any:
    """A loss's block forward from its fused point: loss and gradients of k cells."""

    def forward(
        x: Array, y: Array, p: Array, kc: Array, n: Any, wt: Array, ws: Array,
        program: Array, root: int, g: Array, loss: Array, k: int,
    ) -> None:  # fmt: skip
        for c in range(k):
            g[0, c] = n - n  # 0 in the training dtype
        for i in range(x.shape[0]):
            for c in range(k):
                d = x[i, c] * p[0, c] + p[1, c] - y[i, c]  # as addmm rounds: w x + b - y
                term, slope = point(d, kc, c)
                wt[i, c] = term
                ws[i, c] = slope
                g[0, c] += slope * x[i, c]  # nn.Linear's backward: in point order
        tree_sums(wt, ws, program, k)
        for c in range(k):
            loss[c] = wt[root, c] / n  # torch's mean: the sum, divided by n
            g[1, c] = ws[root, c]

    return jit(forward)


FORWARD = forwards([LOSSES[n].fused for n in REGRESSION], _forward_of, arity=12)


def scratch(
    n: int, n_full: int, rows: tuple[int, ...], dtype: type, aims: int = 3
) -> tuple[np.ndarray, ...]:
    """The kernel's block arrays, made here and passed in: LLVM then knows they are apart
    (arrays numba allocates inside a kernel could alias for all it knows)."""
    m, b = max(n, n_full), BLOCK
    return (
        np.empty((n_full, b), dtype),
        np.empty((n_full, b), dtype),  # the block's data
        np.empty((n, b), dtype),
        np.empty((n, b), dtype),  # this step's minibatch
        np.empty((2 * m, b), dtype),
        np.empty((2 * m, b), dtype),  # terms, slopes, sums
        np.empty((2, b), dtype),
        np.empty((2, b), dtype),  # parameters, new parameters
        np.empty((2, b), dtype),
        np.empty((2, b), dtype),  # gradients, clipped
        np.empty(b, dtype),
        np.empty(b, dtype),
        np.empty(b, dtype),  # l2, loss, clipped flag
        np.zeros((SLOTS, 2, b), dtype),
        np.empty(b, np.bool_),  # rule state, alive
        np.empty(b, np.int64),
        np.empty(b, np.int64),
        np.empty(b, dtype),  # kept, clips, top
        np.empty(b, np.int64),
        np.empty(b, np.int64),  # reached, last_out
        np.empty(b, np.int64),
        np.empty(b, np.int64),
        np.empty(b, np.float64),  # after the first touch: observed, within, excursion
        np.empty((aims, b), dtype),
        np.empty(b, dtype),
        np.empty(b, np.int64),  # target rows, tol, seed
        np.empty(b, dtype),  # each cell's non-finite check
        *(np.empty((r, b), np.float64 if i == 2 else dtype) for i, r in enumerate(rows)),
    )  # the last five: loss coefficients (step, whole data), rule rows (float64, dtype), clip


def _run(
    table: Array, flags: Array, x: Array, y: Array, dataset: Array, seeds: Array, batch: int,
    p0: Array, k_step: Array, k_full: Array, counts: Array, h: Array, hd: Array, cd: Array,
    target: Array, tol: Array, aim: bool, steps: int, program: Array, root: int,
    program_full: Array, root_full: int, trace_at: Array, traced: Array,
    p: Array, kept: Array, clips: Array, top: Array, reached: Array, last_out: Array,
    after: Array, inside: Array, excursion: Array,
    final_loss: Array, finite_grads: Array, trace: Array,
    xf: Array, yf: Array, xb: Array, yb: Array, wt: Array, ws: Array, pb: Array, new: Array,
    g: Array, gc: Array, l2: Array, loss: Array, flag: Array, s: Array, alive: Array,
    kept_b: Array, clips_b: Array, top_b: Array, reached_b: Array, last_b: Array,
    after_b: Array, inside_b: Array, excursion_b: Array, target_b: Array, tol_b: Array,
    seed_b: Array, bad: Array, kc: Array, kf: Array, hb: Array,
    hdb: Array, cdb: Array,
) -> None:  # fmt: skip
    """Train every block of `table` (blocks.Blocks) `steps` steps; results in place, per
    sorted cell: p, kept, clips, top (largest norm kept), reached (first step within
    tol, -1 never), last_out (last step count outside tol, -1 never), from the first touch
    on the steps observed, those within tol and the largest distance, final_loss and
    finite_grads on the whole data at p, and the traced steps (trace_at: step -> slot).
    Loops run over whole vectors of LANES cells: a short block's spare lanes repeat its
    first cell and are never written back."""
    n_full = x.shape[1]
    n = batch if batch > 0 else n_full
    one = counts[0] / counts[0]  # in the training dtype (counts: the points, > 0)
    zero = one - one
    for blk in range(table.shape[0]):
        a, e, lc, rc, cc = table[blk, 0], table[blk, 1], table[blk, 2], table[blk, 3], table[blk, 4]
        k, f = e - a, flags[blk]
        lanes = min(BLOCK, -(-k // LANES) * LANES)  # whole vectors: spare lanes repeat cell a
        for rows, block in ((k_step, kc), (k_full, kf), (hd, hdb), (cd, cdb), (p0, pb)):
            load(rows, block, a, k, lanes)
        load(target, target_b, a, k, lanes)
        load(h, hb, a, k, lanes)
        for c in range(lanes):
            cell = a + c if c < k else a  # spare lanes: the block's first cell again
            for i in range(n_full):
                xf[i, c], yf[i, c] = x[dataset[cell], i], y[dataset[cell], i]
            alive[c], seed_b[c], tol_b[c] = True, seeds[cell], tol[cell]
            kept_b[c], clips_b[c], top_b[c], reached_b[c], last_b[c] = 0, 0, zero, -1, -1
            after_b[c], inside_b[c], excursion_b[c] = 0, 0, -1.0  # distances are >= 0
        s[:] = zero
        if aim:
            _observe(pb, target_b, tol_b, alive, 0, reached_b, last_b, after_b, inside_b,
                     excursion_b, lanes)  # fmt: skip
        for t in range(steps):
            if batch > 0:
                for j in range(n):
                    for c in range(lanes):
                        i = minibatch_index(seed_b[c], t, j, n_full)
                        xb[j, c], yb[j, c] = xf[i, c], yf[i, c]
                FORWARD(lc, xb, yb, pb, kc, counts[0], wt, ws, program, root, g, loss, lanes)
            else:
                FORWARD(lc, xf, yf, pb, kc, counts[0], wt, ws, program, root, g, loss, lanes)
            for c in range(lanes):  # clip_grad_norm_'s L2 norm: sqrt(fma(gb, gb, gw gw))
                l2[c] = math.sqrt(fma(g[1, c], g[1, c], g[0, c] * g[0, c]))
            CLIP(cc, g, l2, cdb, gc, lanes)
            UPDATE(rc, pb, gc, s, hb, hdb, f, t, new, lanes)
            settle(loss, g, gc, new, l2, pb, alive, kept_b, clips_b, top_b, flag, bad, one, lanes)
            if trace_at[t] >= 0:
                _record(trace, trace_at[t], traced, a, k, alive, loss, l2, g, gc, flag, new)
            if aim:
                _observe(pb, target_b, tol_b, alive, t + 1, reached_b, last_b, after_b,
                         inside_b, excursion_b, lanes)  # fmt: skip
        FORWARD(lc, xf, yf, pb, kf, counts[1], wt, ws, program_full, root_full, g, loss, lanes)
        for c in range(k):
            p[0, a + c], p[1, a + c] = pb[0, c], pb[1, c]
            kept[a + c], clips[a + c], top[a + c] = kept_b[c], clips_b[c], top_b[c]
            reached[a + c], last_out[a + c] = reached_b[c], last_b[c]
            after[a + c], inside[a + c], excursion[a + c] = after_b[c], inside_b[c], excursion_b[c]
            final_loss[a + c] = loss[c]
            finite_grads[a + c] = finite(g[0, c]) and finite(g[1, c])


@jit
def _record(
    trace: Array, slot: int, traced: Array, a: int, k: int, alive: Array, loss: Array,
    l2: Array, g: Array, gc: Array, flag: Array, new: Array,
) -> None:  # fmt: skip
    """This step's values of the traced cells of the block (nan once a cell stopped)."""
    for c in range(k):
        if traced[a + c] >= 0 and alive[c]:
            row = trace[traced[a + c], slot]
            row[0], row[1], row[2], row[3] = loss[c], l2[c], g[0, c], g[1, c]
            row[4], row[5], row[6] = gc[0, c], gc[1, c], flag[c]
            row[7], row[8] = new[0, c], new[1, c]


def _polygon_distance(w: float, b: float, target: Array, c: int) -> float:
    """The float64 distance of (w, b) to cell c's polygon: rows 2k, 2k + 1 of target hold
    vertex k (counter-clockwise, the last repeated), its last row the vertex count.
    (np.float64, not float: numba's float() leaves a float32 as it is.)"""
    m = (target.shape[0] - 1) // 2
    nearest, outside = math.inf, target[2 * m, c] < 3
    for k in range(m):
        j = k + 1 if k + 1 < m else 0
        aw, ab = np.float64(target[2 * k, c]), np.float64(target[2 * k + 1, c])
        ew, eb = np.float64(target[2 * j, c]) - aw, np.float64(target[2 * j + 1, c]) - ab
        dw, db = w - aw, b - ab
        length2 = ew * ew + eb * eb
        t = min(max((dw * ew + db * eb) / length2, 0.0), 1.0) if length2 > 0 else 0.0
        gw, gb = dw - t * ew, db - t * eb
        nearest = min(nearest, math.sqrt(gw * gw + gb * gb))
        outside = outside or (length2 > 0 and ew * db - eb * dw < 0)
    return nearest if outside else 0.0


_distance = jit(_polygon_distance, "always")


def _observe_cells(
    p: Array, target: Array, tol: Array, alive: Array, taken: int, reached: Array,
    out: Array, after: Array, inside: Array, excursion: Array, k: int,
) -> None:  # fmt: skip
    """After `taken` steps, for every kept cell: its first step within tol, its last
    one outside (a stopped cell's steps are not its own), and from its first touch on the
    steps observed and within tol and the largest distance (pipeline.engine.target)."""
    last = target.shape[0] - 1
    for c in range(k):
        if target[last, c] > 1:  # a set of minimisers: float64
            dist = _distance(np.float64(p[0, c]), np.float64(p[1, c]), target, c)
        else:  # a point: in the training dtype, as the exact engine
            d0, d1 = p[0, c] - target[0, c], p[1, c] - target[1, c]
            dist = np.float64(math.sqrt(fma(d1, d1, d0 * d0)))
        within = dist <= np.float64(tol[c])
        first = alive[c] & within & (reached[c] < 0)
        reached[c] = taken if first else reached[c]
        out[c] = taken if alive[c] & ~within else out[c]
        touched = alive[c] & (reached[c] >= 0)
        after[c] += touched
        inside[c] += touched & within
        excursion[c] = max(excursion[c], dist) if touched else excursion[c]


_observe = jit(_observe_cells, "always")
run = kernel(_run)
