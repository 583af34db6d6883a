"""The batched classification engine: seeded nn.Linear(2, 2) classifiers, any set of
cells trained as one tensor program.

The issue's study: points labelled by the side of y = 2x they fall on, the logits z of
nn.Linear(2, 2), nn.CrossEntropyLoss (with label smoothing) and nn.MultiMarginLoss for
contrast, under every optimizer and clip of the regression grid (the update rules and
clipping of pipeline.optimizers and pipeline.clips, stepping six parameter rows). With two
classes both losses see
a point only through u = z_y - z_other = s d, where d = z1 - z0 = (W1 - W0) x + b1 - b0
and s = 2 y - 1; so a step computes d at every point of every cell, each point's loss
and dL/du in closed form (`cross_entropy`, `multi_margin`), and five sums over points:
the loss, dL/db1, dL/dW1 (dL/dW0 and dL/db0 are their negatives) and the count right.
Against torch (autograd, torch.optim, torch.nn.utils clipping; tests/engine/test_classification.py)
every value agrees within 1e-9 relative in float64, not bit for bit: torch's
log_softmax and its backward round differently (in float32 the closed form is the nearer
to float64). A cell's bits do not depend on the batch
it sits in or its place there: points lie on the last axis, so a sum over them is
torch's row sum, whatever the number of cells, and no op rounds differently in its
vector and scalar paths (torch.sigmoid does, on AVX2: it is built from exp here).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from pipeline.engine import rules
from pipeline.engine.cells import CLASSIFICATION, Cells
from pipeline.engine.loop import REASONS, Layout, Training, divergence
from pipeline.losses import CLASS_LOSSES

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
LOSSES = CLASSIFICATION  # nn.CrossEntropyLoss(label_smoothing=...), nn.MultiMarginLoss()
PARAMS = ("w00", "w01", "w10", "w11", "b0", "b1")  # nn.Linear(2, 2): weight row-major, bias
# a trace step: loss, L2 gradient norm (before clipping) and accuracy at the parameters the
# step starts from; clipped (0/1); the parameters after the step
TRACE = ("loss", "grad_norm", "accuracy", "clipped", *PARAMS)
VALUES = (*TRACE, *(f"grad_{p}" for p in PARAMS), *(f"clipped_grad_{p}" for p in PARAMS))
LAYOUT = Layout(
    rows=len(VALUES),
    loss=VALUES.index("loss"),
    norm=VALUES.index("grad_norm"),
    grads=slice(VALUES.index("grad_w00"), VALUES.index("grad_b1") + 1),
    clipped_grads=slice(VALUES.index("clipped_grad_w00"), VALUES.index("clipped_grad_b1") + 1),
    clipped=VALUES.index("clipped"),
    params=slice(VALUES.index("w00"), VALUES.index("b1") + 1),
    trace=slice(0, len(TRACE)),
)
ACCURACY = VALUES.index("accuracy")
LINE = (1.0, 2.0)  # direction of y = 2x, the line that labels the points
__all__ = ["LOSSES", "REASONS", "TRACE", "Cells", "Result", "angle_deg", "train"]


@dataclass(frozen=True)
class Result:
    """Per cell, in the order of the cells given, in the dtype trained (angle_deg float64)."""

    init_params: Floats  # (cells, 6), columns PARAMS
    final_params: Floats  # after the last kept step
    final_loss: Floats  # at the final parameters (inf or nan where not finite)
    accuracy: Floats  # fraction of the cell's points argmax classifies right (ties: class 0)
    angle_deg: Floats  # between the final decision boundary and y = 2x, in [0, 90]
    steps_to_target: Ints  # steps taken when accuracy first is 1 (0: at the start; -1: never)
    steps_sustained: Ints  # the first step count from which accuracy stays 1 to the end
    # (the final parameters included); -1 if never or diverged
    diverged_step: Ints  # first step with a non-finite loss, gradient or parameter; -1 none
    diverged_reason: Ints  # code into REASONS; -1 if none
    steps_run: Ints  # steps kept: every step before diverged_step
    max_grad_norm: Floats  # largest L2 gradient norm before clipping of a kept step; 0 if none
    clip_fraction: Floats  # kept steps that clipped / steps kept; 0 if none
    trace: Floats  # (recorded cells, steps, 10), columns TRACE; nan from the diverged step on
    strided: Floats  # (cells, ceil(steps / stride), 10): steps 0, stride, 2 stride, ...


def initial_parameters(seeds: Ints, dtype: torch.dtype) -> Tensor:
    """(6, cells), rows PARAMS: the draws of nn.Linear(2, 2).reset_parameters after
    torch.manual_seed(seed), in float32, converted to dtype; once per distinct seed, on a
    generator of its own (the caller's random state is left alone)."""
    unique, inverse = np.unique(seeds, return_inverse=True)
    table = torch.tensor([_draws(seed) for seed in unique.tolist()], dtype=torch.float32)
    return table.reshape(-1, len(PARAMS)).T.to(dtype)[:, torch.from_numpy(inverse)]


@functools.cache
def _draws(seed: int) -> tuple[float, ...]:
    """nn.Linear(2, 2)'s parameters (PARAMS) after torch.manual_seed(seed), kept for the
    process (a study asks for the same seeds per chunk)."""
    g, row = torch.Generator().manual_seed(seed), torch.empty(len(PARAMS))
    bound = 1 / math.sqrt(2)  # nn.Linear's bias bound, 1 / sqrt(in_features)
    torch.nn.init.kaiming_uniform_(row[:4].view(2, 2), a=math.sqrt(5), generator=g)
    torch.nn.init.uniform_(row[4:], -bound, bound, generator=g)
    return tuple(row.tolist())


def angle_deg(params: npt.ArrayLike) -> Floats:
    """The angle in degrees, in [0, 90], between y = 2x and the decision boundary
    (W1 - W0) x + b1 - b0 = 0 of parameters (..., 6) (columns PARAMS), in float64; nan
    where W1 = W0 (no boundary) or W1 - W0 is not finite."""
    p = np.asarray(params, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        normal = p[..., 2:4] - p[..., 0:2]  # the boundary's normal; y = 2x's is (2, -1)
        normal = normal / np.abs(normal).max(-1, keepdims=True)  # no overflow below
        sine = np.abs(normal @ np.array(LINE))  # |normal . direction|: 0 if parallel
        cosine = np.abs(normal @ np.array([LINE[1], -LINE[0]]))
        return np.degrees(np.arctan2(sine, cosine))  # nan where normal is 0 or inf


def _rows(t: Tensor, block: slice) -> Tensor:
    """The rows of a (cells, n) tensor for the cells `block`; a (1, n) one (one dataset)
    serves every cell whole."""
    return t if len(t) == 1 else t[block]


class Linear2:
    """nn.Linear(2, 2) on two classes under a classification loss, as the batched engine's
    model. Both losses see a point only through u = s d (module docstring): a step computes
    d at every point of every cell, each point's term and dL/du, and five sums over points."""

    layout = LAYOUT

    def __init__(self, cells: Cells, x: Tensor, labels: Tensor, dtype: torch.dtype) -> None:
        """Cells sorted so that each loss's cells are contiguous."""
        n = len(cells)
        rows = torch.from_numpy(cells.dataset)
        x, labels = (x, labels) if len(x) == 1 else (x[rows], labels[rows])  # (cells or 1, n)
        self.x0, self.x1 = x[..., 0].contiguous(), x[..., 1].contiguous()
        self.label = labels == 1
        self.sign = self.label.to(dtype) * 2 - 1  # s = 2 y - 1: u = s d
        self.points = labels.shape[1]
        smoothing = cells.settings["label_smoothing"]
        q = torch.from_numpy(1 - smoothing / 2).to(dtype)[:, None]
        starts = np.flatnonzero(np.diff(cells.loss, prepend=-1))
        self.blocks = [
            (point, b, q[b], _rows(self.sign, b), _rows(self.x0, b), _rows(self.x1, b))
            for a, end in zip(starts, [*starts[1:], n], strict=True)
            for b in [slice(int(a), int(end))]
            for point in [CLASS_LOSSES[CLASSIFICATION[cells.loss[a]]].point]
        ]
        self.correct = torch.empty(n, dtype=torch.int64)
        self.never = torch.iinfo(torch.int64).max
        self.reached = torch.full((n,), self.never, dtype=torch.int64)
        self.last_out = torch.full((n,), -1, dtype=torch.int64)  # last step with accuracy < 1

    def forward(self, p: Tensor, values: Tensor, t: int) -> None:
        self.evaluate(p, values[LAYOUT.loss], values[LAYOUT.grads], values[ACCURACY])

    def evaluate(self, p: Tensor, loss: Tensor, grads: Tensor, accuracy: Tensor) -> None:
        """Write every cell's loss at parameters p (6, cells), its gradients (6, cells,
        rows PARAMS) and its accuracy into loss, grads, accuracy."""
        w, b = p[2:4] - p[0:2], p[5] - p[4]
        d = torch.mul(self.x0, w[0, :, None]).add_(self.x1 * w[1, :, None]).add_(b[:, None])
        # argmax z == y (a tie, d = 0, predicts class 0); sums over the last axis are
        # torch's row sums: a cell's bits whatever the batch
        torch.sum(torch.eq(d > 0, self.label), -1, out=self.correct)
        accuracy.copy_(self.correct).div_(self.points)  # int / int would be float32
        u = d.mul_(self.sign)  # z_y - z_other
        for point_loss, block, q, sign, x0, x1 in self.blocks:
            terms, slope = point_loss(u[block], q)
            torch.sum(terms, -1, out=loss[block])
            slope.mul_(sign)  # dL/dd, n times
            torch.sum(slope, -1, out=grads[5, block])  # dd/db1 = 1, dd/dW1 = x
            torch.sum(slope * x0, -1, out=grads[2, block])
            torch.sum(slope.mul_(x1), -1, out=grads[3, block])
        loss.div_(self.points)  # the means
        grads[2:4].div_(self.points)
        grads[5].div_(self.points)
        torch.neg(grads[2:4], out=grads[0:2])  # dd/dW0 = -x, dd/db0 = -1
        torch.neg(grads[5], out=grads[4])

    def norm(self, g: Tensor, out: Tensor) -> None:
        """L2 norm of all six gradients, before clipping."""
        torch.mul(g[0], g[0], out=out)
        for row in g[1:]:
            out.addcmul_(row, row)
        out.sqrt_()

    def observe(self, values: Tensor, p: Tensor, t: int, alive: Tensor) -> None:
        # the accuracy this step started from; a stopped cell's p no longer moves: its
        # accuracy reached 1 when it was kept, or never
        accuracy = values[ACCURACY]
        torch.minimum(self.reached, torch.where(accuracy == 1, t, self.never), out=self.reached)
        self.last_out.masked_fill_(accuracy != 1, t)


def _data(
    x: npt.ArrayLike | Tensor, labels: npt.ArrayLike | Tensor, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """x as (datasets, n, 2) of dtype, labels as (datasets, n) int64; ValueError if not."""
    xt = x if isinstance(x, Tensor) else torch.from_numpy(np.asarray(x, dtype=np.float64))
    yt = labels if isinstance(labels, Tensor) else torch.from_numpy(np.asarray(labels))
    shapes = f"x {tuple(xt.shape)}, labels {tuple(yt.shape)}"
    if xt.dim() not in (2, 3) or xt.shape[-1] != 2 or xt.shape[:-1] != yt.shape:
        raise ValueError(f"{shapes}: expected (datasets, n, 2) and (datasets, n), or (n, 2), (n,)")
    if ((yt != 0) & (yt != 1)).any():
        raise ValueError("labels: 0 or 1 only")
    xt = xt.to(dtype).reshape(-1, *xt.shape[-2:]).contiguous()  # as the reference converts
    return xt, yt.to(torch.int64).reshape(-1, yt.shape[-1]).contiguous()


def train(
    cells: Cells,
    x: npt.ArrayLike | Tensor,
    labels: npt.ArrayLike | Tensor,
    steps: int,
    dtype: torch.dtype = torch.float32,
    *,
    record: npt.ArrayLike = (),
    stride: int = 0,
) -> Result:
    """Train every cell (Cells of the CLASSIFICATION losses) `steps` full-batch steps on
    the points x[d], labels[d] of its dataset d = cells.dataset[i]; x is (datasets, n, 2)
    (or (n, 2) for one), of any float dtype (converted to `dtype`), labels (datasets, n) in
    {0, 1}. `record`: the cells whose every step goes into Result.trace; `stride` > 0:
    every stride-th step of every cell into Result.strided."""
    xt, yt = _data(x, labels, dtype)
    if cells.losses != CLASSIFICATION:
        raise ValueError(f"cells of the losses {cells.losses}, not {CLASSIFICATION}")
    if len(cells) == 0 or cells.dataset.max() >= len(xt) or steps < 0:
        raise ValueError(f"{len(cells)} cells, {len(xt)} datasets, {steps} steps")
    with torch.inference_mode():
        order, groups = rules.groups(cells, cells.loss, dtype, rows=len(PARAMS))
        ordered = cells.take(order)  # sorted by loss and update rule from here on
        unsort = torch.from_numpy(np.argsort(order))
        model = Linear2(ordered, xt, yt, dtype)
        p = initial_parameters(ordered.seed, dtype)
        run = Training(model, ordered, groups, p, dtype)
        recorded = unsort[torch.from_numpy(np.asarray(record, dtype=np.int64).reshape(-1))]
        trace, strided = run.run(steps, recorded, stride, unsort)
        loss, accuracy = torch.empty(len(cells), dtype=dtype), torch.empty(len(cells), dtype=dtype)
        grads = torch.empty_like(run.p)
        model.evaluate(run.p, loss, grads, accuracy)  # where a diverged cell stopped, too
        reached = torch.where(accuracy == 1, torch.minimum(model.reached, run.kept), model.reached)
        u = unsort.numpy()
        counts = run.counts(steps, u)
        final, loss_np = run.p.numpy()[:, u].T, loss.numpy()[u]
        finite_grads = torch.isfinite(grads).all(0).numpy()[u]
        reached_np = reached.numpy()[u]
        ends_right = (accuracy == 1).numpy()[u] & (counts["steps_run"] == steps)
        sustained = np.where(ends_right, model.last_out.numpy()[u] + 1, -1)
        return Result(
            init_params=run.init.numpy()[:, u].T,
            final_params=final,
            final_loss=loss_np,
            accuracy=accuracy.numpy()[u],
            angle_deg=angle_deg(final),
            steps_to_target=np.where(reached_np == model.never, -1, reached_np),
            steps_sustained=sustained,
            **divergence(counts["steps_run"], steps, loss_np, finite_grads),
            **counts,
            trace=trace.permute(2, 0, 1).numpy(),
            strided=strided.permute(2, 0, 1).numpy(),
        )
