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
from pipeline.engine.fused.blocks import BLOCK
from pipeline.engine.fused.compile import chain, fma, jit, kernel, member
from pipeline.engine.fused.loop import CLIP, UPDATE, finite, minibatch_index, tree_sum
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
        for i in range(x.shape[0]):
            for c in range(k):
                d = x[i, c] * p[0, c] + p[1, c] - y[i, c]  # as addmm rounds: w x + b - y
                wt[i, c], ws[i, c] = point(d, kc, c)
                if i == 0:
                    g[0, c] = ws[i, c] * x[i, c]
                else:
                    g[0, c] += ws[i, c] * x[i, c]  # nn.Linear's backward: in point order
        tree_sum(wt, program, root, k)
        tree_sum(ws, program, root, k)
        for c in range(k):
            loss[c] = wt[root, c] / n  # torch's mean: the sum, divided by n
            g[1, c] = ws[root, c]

    return jit(forward, "always")


def _missing(*args: Array) -> None:
    raise ValueError("no fused form")


FORWARD = chain(
    [
        _forward_of(member(f.point, "always")) if (f := LOSSES[n].fused) else jit(_missing)
        for n in REGRESSION
    ],
    arity=12,
)


def _run(
    table: Array, flags: Array, x: Array, y: Array, dataset: Array, seeds: Array, batch: int,
    p0: Array, k_step: Array, k_full: Array, counts: Array, h: Array, hd: Array, cd: Array,
    target: Array, tol: Array, aim: bool, steps: int, program: Array, root: int,
    program_full: Array, root_full: int, trace_at: Array, traced: Array,
    p: Array, kept: Array, clips: Array, top: Array, reached: Array, last_out: Array,
    final_loss: Array, finite_grads: Array, trace: Array,
) -> None:  # fmt: skip
    """Train every block of `table` (blocks.Blocks) `steps` steps; results in place, per
    sorted cell: p, kept, clips, top (largest norm kept), reached (first step within
    tol, -1 never), last_out (last step count outside tol, -1 never), final_loss and
    finite_grads on the whole data at p, and the traced steps (trace_at: step -> slot)."""
    n_full = x.shape[1]
    n = batch if batch > 0 else n_full
    size = BLOCK
    xf, yf = np.empty((n_full, size), x.dtype), np.empty((n_full, size), x.dtype)
    xb, yb = np.empty((n, size), x.dtype), np.empty((n, size), x.dtype)
    wt, ws = np.empty((2 * max(n, n_full), size), x.dtype), np.empty((2 * max(n, n_full), size), x.dtype)
    pb, new = np.empty((2, size), x.dtype), np.empty((2, size), x.dtype)
    g, gc = np.empty((2, size), x.dtype), np.empty((2, size), x.dtype)
    l2, loss = np.empty(size, x.dtype), np.empty(size, x.dtype)
    s = np.zeros((SLOTS, 2, size), x.dtype)
    alive = np.empty(size, np.bool_)
    kept_b, clips_b = np.zeros(size, np.int64), np.zeros(size, np.int64)
    top_b, flag = np.zeros(size, x.dtype), np.zeros(size, x.dtype)
    zero, one = np.zeros(1, x.dtype)[0], np.ones(1, x.dtype)[0]  # in the training dtype
    kc, kf = np.zeros((k_step.shape[0], size), x.dtype), np.zeros((k_full.shape[0], size), x.dtype)
    hb, hdb = np.zeros((h.shape[0], size)), np.zeros((hd.shape[0], size), x.dtype)
    cdb = np.zeros((cd.shape[0], size), x.dtype)
    for blk in range(table.shape[0]):
        a, e, lc, rc, cc = table[blk, 0], table[blk, 1], table[blk, 2], table[blk, 3], table[blk, 4]
        k, f = e - a, flags[blk]
        for rows, block in ((k_step, kc), (k_full, kf), (hd, hdb), (cd, cdb)):
            block[:, :k] = rows[:, a:e]  # contiguous: the loops over cells vectorise
        hb[:, :k] = h[:, a:e]
        for i in range(n_full):
            for c in range(k):
                xf[i, c], yf[i, c] = x[dataset[a + c], i], y[dataset[a + c], i]
        s[:] = 0
        for c in range(k):
            pb[0, c], pb[1, c], alive[c] = p0[0, a + c], p0[1, a + c], True
            kept_b[c], clips_b[c], top_b[c] = 0, 0, zero
            if aim:
                _observe(pb, target, tol, a, c, 0, reached, last_out)
        for t in range(steps):
            if batch > 0:
                for j in range(n):
                    for c in range(k):
                        i = minibatch_index(seeds[a + c], t, j, n_full)
                        xb[j, c], yb[j, c] = xf[i, c], yf[i, c]
                FORWARD(lc, xb, yb, pb, kc, counts[0], wt, ws, program, root, g, loss, k)
            else:
                FORWARD(lc, xf, yf, pb, kc, counts[0], wt, ws, program, root, g, loss, k)
            for c in range(k):  # clip_grad_norm_'s L2 norm: sqrt(fma(gb, gb, gw gw))
                l2[c] = math.sqrt(fma(g[1, c], g[1, c], g[0, c] * g[0, c]))
            CLIP(cc, g, l2, cdb, gc, k)
            UPDATE(rc, pb, gc, s, hb, hdb, f, t, new, k)
            for c in range(k):  # branch-free: the loop over cells vectorises
                ok = alive[c] & finite(loss[c]) & finite(g[0, c]) & finite(g[1, c])
                ok = ok & finite(new[0, c]) & finite(new[1, c])
                clipped = (gc[0, c] != g[0, c]) | (gc[1, c] != g[1, c])
                kept_b[c] += ok
                clips_b[c] += ok & clipped
                top_b[c] = max(top_b[c], l2[c] if ok else zero)
                flag[c] = one if clipped else zero
                alive[c] = ok
                pb[0, c] = new[0, c] if ok else pb[0, c]
                pb[1, c] = new[1, c] if ok else pb[1, c]
            if trace_at[t] >= 0:
                _record(trace, trace_at[t], traced, a, k, alive, loss, l2, g, gc, flag, new)
            if aim:
                for c in range(k):
                    if alive[c]:
                        _observe(pb, target, tol, a, c, t + 1, reached, last_out)
        FORWARD(lc, xf, yf, pb, kf, counts[1], wt, ws, program_full, root_full, g, loss, k)
        for c in range(k):
            p[0, a + c], p[1, a + c] = pb[0, c], pb[1, c]
            kept[a + c], clips[a + c], top[a + c] = kept_b[c], clips_b[c], top_b[c]
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
            row[4], row[5], row[6], row[7], row[8] = gc[0, c], gc[1, c], flag[c], new[0, c], new[1, c]


@jit
def _observe(
    p: Array, target: Array, tol: Array, a: int, c: int, taken: int, reached: Array, out: Array
) -> None:
    """After `taken` steps: cell a + c's first step within tol, its last one outside."""
    d0, d1 = p[0, c] - target[0, a + c], p[1, c] - target[1, a + c]
    if math.sqrt(fma(d1, d1, d0 * d0)) <= tol[a + c]:
        if reached[a + c] < 0:
            reached[a + c] = taken
    else:
        out[a + c] = taken


run = kernel(_run)
