"""The batched engine for the tutorial's model nn.Linear(1, 1): any set of regression cells
trained as one tensor program (pipeline.engine.loop).

Every cell's parameters and optimizer state are columns of tensors over cells, its data a
column of (points, cells) ones; a step runs one fixed sequence of tensor ops for all cells
(a loop over the few loss and update rules, never over cells), written to round as torch's
kernels do: against pipeline.grid.reference (one torch.optim loop per cell) every kept
value agrees bit for bit in float32 and float64, and a cell's bits do not depend on the
batch it sits in or its place there. (Not bit for bit: the reference's grad_norm, math.hypot
in float64, and its hand-written clipping rules, which round differently from
torch.nn.utils; the engine does as torch.)
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
from pipeline.engine import target as target_
from pipeline.engine.cells import Cells
from pipeline.engine.loop import REASONS, Layout, Training, divergence
from pipeline.engine.points import LOSS_GROUP, Points

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
TRACE = (  # a step's recorded values, as the grid's trace names them (pipeline.grid.trace)
    "loss", "grad_norm", "grad_weight", "grad_bias", "clipped_grad_weight",
    "clipped_grad_bias", "clipped", "weight", "bias",
)  # fmt: skip
LAYOUT = Layout(
    rows=len(TRACE),
    loss=TRACE.index("loss"),
    norm=TRACE.index("grad_norm"),
    grads=slice(TRACE.index("grad_weight"), TRACE.index("grad_bias") + 1),
    clipped_grads=slice(TRACE.index("clipped_grad_weight"), TRACE.index("clipped_grad_bias") + 1),
    clipped=TRACE.index("clipped"),
    params=slice(TRACE.index("weight"), TRACE.index("bias") + 1),
    trace=slice(0, len(TRACE)),
)
__all__ = ["REASONS", "TRACE", "Cells", "Result", "initial_parameters", "train"]


@dataclass(frozen=True)
class Result:
    """Per cell (in the order of the cells given): measures named as
    pipeline.grid.trace.MEASURES, in the dtype trained; and the recorded steps, columns TRACE."""

    init_weight: Floats
    init_bias: Floats
    final_weight: Floats  # after the last kept step
    final_bias: Floats
    final_loss: Floats  # at the final parameters (inf or nan where not finite)
    diverged_step: Ints  # first step with a non-finite loss, gradient or parameter; -1 none
    diverged_reason: Ints  # code into REASONS; -1 if none
    steps_run: Ints  # steps kept: every step before diverged_step
    max_grad_norm: Floats  # largest L2 gradient norm before clipping of a kept step; 0 if none
    clip_fraction: Floats  # kept steps that clipped / steps kept; 0 if none
    steps_to_target: Ints  # steps taken when first within tol of the target set; 0 if at
    # the start, -1 if never (or no target given): the first touch
    steps_sustained: Ints  # the first step count from which the cell stays within tol to
    # its last step (steps); -1 if never, if diverged or without a target
    touch_share: Floats  # share of steps within tol from the first touch on; nan if never
    excursion: Floats  # largest distance to the target from the first touch on; nan if never
    target_error: Floats  # final (w, b)'s distance to the target set, float64; nan without
    trace: Floats  # (recorded cells, steps, 9): every step of the cells `record` named;
    # nan from a cell's diverged step on
    strided: Floats  # (cells, ceil(steps / stride), 9): steps 0, stride, 2 stride, ...


def initial_parameters(seeds: Ints, dtype: torch.dtype) -> Tensor:
    """(2, cells): each cell's (weight, bias) where reference.train_cell starts, once per
    distinct seed: the draws of nn.Linear(1, 1).reset_parameters after
    torch.manual_seed(seed), in float32, converted to dtype. The same calls run on a
    generator of their own (torch.manual_seed costs 70 us and changes the global state),
    each seed's draws kept for the process (a study asks for the same seeds per chunk)."""
    unique, inverse = np.unique(seeds, return_inverse=True)
    table = torch.tensor([_draws(seed) for seed in unique.tolist()], dtype=torch.float32)
    return table.reshape(-1, 2).T.to(dtype)[:, torch.from_numpy(inverse)]


@functools.cache
def _draws(seed: int) -> tuple[float, float]:
    """nn.Linear(1, 1)'s (weight, bias) after torch.manual_seed(seed), float32 values."""
    g, pair = torch.Generator().manual_seed(seed), torch.empty(2)
    torch.nn.init.kaiming_uniform_(pair[0:1].view(1, 1), a=math.sqrt(5), generator=g)
    torch.nn.init.uniform_(pair[1:2], -1.0, 1.0, generator=g)  # 1 / sqrt(fan_in)
    return tuple(pair.tolist())  # type: ignore[return-value]


class Linear:
    """nn.Linear(1, 1) under a regression loss, as the batched engine's model."""

    layout = LAYOUT

    def __init__(self, points: Points, target: target_.Target | None) -> None:
        self.points, self.target = points, target

    def forward(self, p: Tensor, values: Tensor, t: int) -> None:
        self.points.draw(t)
        self.points.loss_and_grads(p, values[LAYOUT.loss], values[LAYOUT.grads])

    def norm(self, g: Tensor, out: Tensor) -> None:
        """Each cell's L2 norm of g (2, cells) into out, as clip_grad_norm_ computes it: a
        one-element gradient's norm is its magnitude, and vector_norm of the pair is
        std::sqrt(fma(gb, gb, gw * gw)). numpy's sqrt is IEEE's as std::sqrt is; torch.sqrt
        rounds differently (on this build) and would lose torch's bits."""
        torch.mul(g[0], g[0], out=out).addcmul_(g[1], g[1])
        np.sqrt(out.numpy(), out=out.numpy())

    def observe(self, values: Tensor, p: Tensor, t: int, alive: Tensor) -> None:
        if self.target is not None:
            self.target.update(p, t + 1, alive.numpy())


def _points(v: npt.ArrayLike | Tensor, dtype: torch.dtype) -> Tensor:
    t = v if isinstance(v, Tensor) else torch.from_numpy(np.array(v, dtype=np.float64))  # a copy:
    # a read-only view (np.broadcast_to) would make torch warn
    return t.to(dtype).reshape(-1, t.shape[-1]).contiguous()  # the reference's x.to(dtype)


def _sorted(values: npt.ArrayLike | None, n: int, order: Ints, width: int) -> Floats | None:
    """Per-cell values (cells, width) or one for all, in the sorted cells' order."""
    if values is None:
        return None
    shape = (n, width) if width else (n,)
    return np.broadcast_to(np.asarray(values, dtype=np.float64), shape)[order]


def train(
    cells: Cells,
    x: npt.ArrayLike | Tensor,
    y: npt.ArrayLike | Tensor,
    steps: int,
    dtype: torch.dtype = torch.float32,
    *,
    record: npt.ArrayLike = (),
    stride: int = 0,
    target: npt.ArrayLike | None = None,
    tol: npt.ArrayLike = 0.0,
    batch_size: int = 0,
    start: npt.ArrayLike | None = None,
) -> Result:
    """Train every cell `steps` full-batch steps on the points x[d], y[d] of its dataset
    d = cells.dataset[i]; x, y are (datasets, n) (or (n,) for one), of any float dtype,
    converted to `dtype` as the reference converts them. `record`: the cells whose every
    step goes into Result.trace; `stride` > 0: every stride-th step of every cell into
    Result.strided. `target` ((2,) or (cells, 2): w*, b*; or (cells, V, 2): each cell's
    set of minimisers, a convex polygon padded by its last vertex) and `tol`: the measures
    against it (pipeline.engine.target).
    `batch_size` > 0: each step on a minibatch of that many points (ops.minibatch, seeded
    by the cell's seed); the recorded loss is the minibatch's, final_loss the data's.
    `start` ((cells, 2) or (2,)): each cell's initial (weight, bias) instead of its seed's."""
    xt, yt = _points(x, dtype), _points(y, dtype)
    if xt.shape != yt.shape or len(cells) == 0 or cells.dataset.max() >= len(xt) or steps < 0:
        raise ValueError(f"x {tuple(xt.shape)}, y {tuple(yt.shape)}: one row per dataset")
    if batch_size > xt.shape[1]:
        raise ValueError(f"batch_size {batch_size}: more than the {xt.shape[1]} points")
    n = len(cells)
    with torch.inference_mode():
        order, groups = rules.groups(cells, LOSS_GROUP[cells.loss], dtype, rows=2)
        ordered = cells.take(order)  # sorted by loss and update rule from here on
        unsort = torch.from_numpy(np.argsort(order))
        given = _sorted(start, n, order, 2)
        p = (
            initial_parameters(ordered.seed, dtype)
            if given is None
            else torch.from_numpy(np.ascontiguousarray(given.T)).to(dtype)
        )
        goal = None
        if target is not None:
            aim = target_.padded(target, n)[order]
            goal = target_.Target(aim, _sorted(tol, n, order, 0), p)  # type: ignore[arg-type]
        points = Points(ordered, xt, yt, dtype, batch_size)
        run = Training(Linear(points, goal), ordered, groups, p, dtype)
        recorded = unsort[torch.from_numpy(np.asarray(record, dtype=np.int64).reshape(-1))]
        trace, strided = run.run(steps, recorded, stride, unsort)
        # the final loss on every point (a minibatch's was the step's), where a cell stopped
        data = Points(ordered, xt, yt, dtype) if batch_size else points
        loss, grads = torch.empty(n, dtype=dtype), torch.empty_like(run.p)
        data.loss_and_grads(run.p, loss, grads)
        u = unsort.numpy()
        counts = run.counts(steps, u)
        final, init = run.p.numpy()[:, u], run.init.numpy()[:, u]
        loss_np, finite_grads = loss.numpy()[u], torch.isfinite(grads).all(0).numpy()[u]
        m = goal.measures(run.p, steps, counts["steps_run"], u) if goal else target_.none(n)
        return Result(
            init_weight=init[0],
            init_bias=init[1],
            final_weight=final[0],
            final_bias=final[1],
            final_loss=loss_np,
            **divergence(counts["steps_run"], steps, loss_np, finite_grads),
            **counts,
            steps_to_target=m.reached,
            steps_sustained=m.sustained,
            touch_share=m.touch_share,
            excursion=m.excursion,
            target_error=m.error,
            trace=trace.permute(2, 0, 1).numpy(),
            strided=strided.permute(2, 0, 1).numpy(),
        )
