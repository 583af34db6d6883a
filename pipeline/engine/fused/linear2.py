"""The fused kernel of nn.Linear(2, 2) on two classes (pipeline.engine.classification's
model): every block of cells trained with the whole step loop inside.

A step, per block: each point's d = (W1 - W0) x + b1 - b0, the point right when d > 0
matches its label, u = s d (s = 2 label - 1), the loss's fused point (term, dL/du), then
four sums over points in torch.sum's order (the loss, dL/db1, dL/dW1's two entries; W0's
and b0's are their negatives), the norm of all six, the clipping form, the rule, the
checks and counts; the target is every point right (first touch and sustained).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pipeline.engine.cells import CLASSIFICATION
from pipeline.engine.fused.blocks import BLOCK, LANES
from pipeline.engine.fused.compile import fma, jit, kernel
from pipeline.engine.fused.loop import CLIP, UPDATE, finite, forwards, load, settle, tree_sums
from pipeline.losses import CLASS_LOSSES

Array = Any  # a numpy array inside compiled code
SLOTS = 4  # state slots per parameter: the most any rule keeps (pipeline.optimizers)
ROWS = 6  # w00, w01, w10, w11, b0, b1
WIDTH = 10  # a traced step's values: pipeline.engine.classification.TRACE


def _forward_of(point: Any) -> Any:
    """A loss's block forward from its fused point: loss, gradients, accuracy of k cells."""

    def forward(
        x0: Array, x1: Array, sign: Array, label: Array, p: Array, kc: Array, n: Any,
        w: Array, program: Array, root: int, g: Array, loss: Array, accuracy: Array, k: int,
    ) -> None:  # fmt: skip
        for c in range(k):
            accuracy[c] = n - n
        for i in range(x0.shape[0]):
            for c in range(k):
                d = x0[i, c] * (p[2, c] - p[0, c]) + x1[i, c] * (p[3, c] - p[1, c])
                d = d + (p[5, c] - p[4, c])
                accuracy[c] += n / n if (d > n - n) == label[i, c] else n - n  # ties: 0
                term, slope = point(d * sign[i, c], kc, c)
                slope = slope * sign[i, c]  # dL/dd
                w[0, i, c], w[1, i, c] = term, slope
                w[2, i, c], w[3, i, c] = slope * x0[i, c], slope * x1[i, c]
        tree_sums(w[0], w[1], program, k)
        tree_sums(w[2], w[3], program, k)
        for c in range(k):
            loss[c] = w[0, root, c] / n
            g[5, c], g[2, c], g[3, c] = w[1, root, c] / n, w[2, root, c] / n, w[3, root, c] / n
            g[4, c], g[0, c], g[1, c] = -g[5, c], -g[2, c], -g[3, c]
            accuracy[c] = accuracy[c] / n

    return jit(forward, "always")


FORWARD = forwards([CLASS_LOSSES[n].fused for n in CLASSIFICATION], _forward_of, arity=14)


def scratch(n: int, rows: tuple[int, ...], dtype: type) -> tuple[np.ndarray, ...]:
    """The kernel's block arrays, made here and passed in (apart, for LLVM)."""
    b = BLOCK
    return (
        *(np.empty((n, b), dtype) for _ in range(3)),
        np.empty((n, b), np.bool_),  # data
        np.empty((4, 2 * n, b), dtype),  # terms, slopes, slope x0, slope x1 and their sums
        *(np.empty((ROWS, b), dtype) for _ in range(4)),  # params, new, gradients, clipped
        *(np.empty(b, dtype) for _ in range(5)),  # l2, loss, accuracy, flag, check
        np.zeros((SLOTS, ROWS, b), dtype),
        np.empty(b, np.bool_),  # rule state, alive
        np.empty(b, np.int64),
        np.empty(b, np.int64),
        np.empty(b, dtype),  # kept, clips, top
        np.empty(b, np.int64),
        np.empty(b, np.int64),  # reached, last_out
        *(np.empty((r, b), np.float64 if i == 1 else dtype) for i, r in enumerate(rows)),
    )  # the last four: loss coefficients, rule rows (float64, dtype), clip


def _run(
    table: Array, flags: Array, x: Array, labels: Array, dataset: Array, p0: Array,
    k_step: Array, counts: Array, h: Array, hd: Array, cd: Array, steps: int,
    program: Array, root: int, trace_at: Array, traced: Array,
    p: Array, kept: Array, clips: Array, top: Array, reached: Array, last_out: Array,
    final_loss: Array, final_accuracy: Array, finite_grads: Array, trace: Array,
    x0: Array, x1: Array, sign: Array, label: Array, w: Array, pb: Array, new: Array,
    g: Array, gc: Array, l2: Array, loss: Array, accuracy: Array, flag: Array, bad: Array,
    s: Array, alive: Array, kept_b: Array, clips_b: Array, top_b: Array, reached_b: Array,
    last_b: Array, kc: Array, hb: Array, hdb: Array, cdb: Array,
) -> None:  # fmt: skip
    """Train every block of `table` (blocks.Blocks) `steps` steps; results in place per
    sorted cell, as linear._run's, with accuracy (the target: every point right)."""
    n, n1 = x.shape[1], counts[0]  # the points, and their number in the training dtype
    one = n1 / n1
    zero = one - one
    for blk in range(table.shape[0]):
        a, e, lc, rc, cc = table[blk, 0], table[blk, 1], table[blk, 2], table[blk, 3], table[blk, 4]
        k, f = e - a, flags[blk]
        lanes = min(BLOCK, -(-k // LANES) * LANES)  # whole vectors: spare lanes repeat cell a
        for rows, block in ((k_step, kc), (hd, hdb), (cd, cdb), (p0, pb)):
            load(rows, block, a, k, lanes)
        load(h, hb, a, k, lanes)
        for c in range(lanes):
            cell = a + c if c < k else a  # spare lanes: the block's first cell again
            for i in range(n):
                x0[i, c], x1[i, c] = x[dataset[cell], i, 0], x[dataset[cell], i, 1]
                label[i, c] = labels[dataset[cell], i] == 1
                sign[i, c] = one if label[i, c] else -one
            alive[c], kept_b[c], clips_b[c], top_b[c], reached_b[c], last_b[c] = (
                True, 0, 0, zero, -1, -1,
            )  # fmt: skip
        s[:] = zero
        for t in range(steps):
            FORWARD(lc, x0, x1, sign, label, pb, kc, n1, w, program, root, g, loss, accuracy, lanes)
            for c in range(lanes):  # the L2 norm of all six, before clipping
                total = g[0, c] * g[0, c]
                for r in range(1, ROWS):
                    total = fma(g[r, c], g[r, c], total)
                l2[c] = math.sqrt(total)
            for c in range(lanes):  # the accuracy this step starts from, if still kept
                right = accuracy[c] == one
                reached_b[c] = t if alive[c] & right & (reached_b[c] < 0) else reached_b[c]
                last_b[c] = t if alive[c] & ~right else last_b[c]
            CLIP(cc, g, l2, cdb, gc, lanes)
            UPDATE(rc, pb, gc, s, hb, hdb, f, t, new, lanes)
            settle(loss, g, gc, new, l2, pb, alive, kept_b, clips_b, top_b, flag, bad, one, lanes)
            if trace_at[t] >= 0:
                _record(trace, trace_at[t], traced, a, k, alive, loss, l2, accuracy, flag, new)
        FORWARD(lc, x0, x1, sign, label, pb, kc, n1, w, program, root, g, loss, accuracy, lanes)
        for c in range(k):
            for r in range(ROWS):
                p[r, a + c] = pb[r, c]
            kept[a + c], clips[a + c], top[a + c] = kept_b[c], clips_b[c], top_b[c]
            reached[a + c], last_out[a + c] = reached_b[c], last_b[c]
            final_loss[a + c], final_accuracy[a + c] = loss[c], accuracy[c]
            ok = True
            for r in range(ROWS):
                ok = ok and finite(g[r, c])
            finite_grads[a + c] = ok


@jit
def _record(
    trace: Array, slot: int, traced: Array, a: int, k: int, alive: Array, loss: Array,
    l2: Array, accuracy: Array, flag: Array, new: Array,
) -> None:  # fmt: skip
    """This step's values of the traced cells of the block (nan once a cell stopped)."""
    for c in range(k):
        if traced[a + c] >= 0 and alive[c]:
            row = trace[traced[a + c], slot]
            row[0], row[1], row[2], row[3] = loss[c], l2[c], accuracy[c], flag[c]
            for r in range(ROWS):
                row[4 + r] = new[r, c]


run = kernel(_run)
