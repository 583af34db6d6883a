"""The batched engine: any set of cells trained as one tensor program.

Every cell's parameters and optimizer state are columns of tensors over cells, its data
a column of (points, cells) ones; a step runs one fixed sequence of tensor ops for all
cells (a loop over the few update rules, never over cells). pipeline.engine.batched holds the
arithmetic, written to round as torch's kernels do: against pipeline.grid.reference (one
torch.optim loop per cell) every kept value agrees bit for bit in float32 and float64,
and a cell's bits do not depend on the batch it sits in or its place there. (Not
bit for bit: the reference's grad_norm, math.hypot in float64, and its hand-written
clipping rules, which round differently from torch.nn.utils; the engine does as torch.)
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from pipeline import grid
from pipeline.clip import norm_type_of
from pipeline.engine import batched
from pipeline.engine.batched import Floats, Ints
from pipeline.grid.trace import COLUMNS

LOSSES, OPTIMIZERS, CLIPS = batched.LOSSES, batched.OPTIMIZERS, batched.CLIPS
GRID_CLIPS = {"none": 0, "norm": 1, "value": 2, "handnorm": 1, "handvalue": 2}  # same rules
REASONS = ("loss", "gradient", "parameters")  # reference.divergence's, in its order
TRACE = COLUMNS[1:]  # a trace step's 9 values: a Row without its step number
NAN = math.nan
# A float setting's value where it is not given: torch's defaults, or nan where the cell
# must give it when it uses it (eps: adam and rmsprop 1e-8, adagrad 1e-10).
DEFAULTS = {
    **dict.fromkeys(("momentum", "dampening", "weight_decay", "lr_decay"), 0.0),
    **{"loss_param": 1.0, "beta1": 0.9, "beta2": 0.999, "alpha": 0.99, "norm_type": 2.0},
    **dict.fromkeys(("lr", "eps", "max_norm", "clip_value"), NAN),
    "initial_accumulator_value": 0.0,
}
EPS = {"adam": 1e-8, "adamw": 1e-8, "rmsprop": 1e-8, "adagrad": 1e-10}
NAMES = {"loss": (LOSSES, None), "optimizer": (OPTIMIZERS, None), "clip": (CLIPS, "none")}


@dataclass(frozen=True)
class Cells:
    """Cells as columns: entry i of every array is cell i's. Names are codes into LOSSES,
    OPTIMIZERS, CLIPS; a setting a cell's loss, optimizer or clip does not use is ignored."""

    loss: Ints
    optimizer: Ints
    clip: Ints
    seed: Ints  # initial point: torch.manual_seed(seed), then nn.Linear(1, 1)
    dataset: Ints  # row of train's x and y
    lr: Floats
    loss_param: Floats  # smoothl1's beta, huber's delta
    momentum: Floats  # sgd, momentum, nesterov and rmsprop
    dampening: Floats
    weight_decay: Floats
    beta1: Floats
    beta2: Floats
    eps: Floats
    alpha: Floats
    lr_decay: Floats
    initial_accumulator_value: Floats
    max_norm: Floats
    norm_type: Floats  # >= 1, or inf
    clip_value: Floats
    amsgrad: Floats  # 0 or 1
    centered: Floats  # 0 or 1

    def __len__(self) -> int:
        return len(self.lr)

    @classmethod
    def of(cls, **columns: npt.ArrayLike) -> "Cells":
        """Cells from columns, each an array or one value for all, names as strings or
        codes (vectorised: no Python loop per cell). Required: loss, optimizer, lr, seed.
        ValueError names every invalid setting."""
        unknown = set(columns) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        arrays = dict(
            zip(columns, np.broadcast_arrays(*map(np.asarray, columns.values())), strict=True)
        )
        n = np.size(arrays["lr"])

        def column(name: str, default: object) -> npt.NDArray[np.generic]:
            return np.broadcast_to(arrays.get(name, np.asarray(default)), (n,))

        codes = {k: _codes(column(k, d), names) for k, (names, d) in NAMES.items()}
        ints = {k: column(k, 0).astype(np.int64) for k in ("seed", "dataset")}
        floats = {f.name: column(f.name, DEFAULTS.get(f.name, 0.0)) for f in fields(cls)[5:]}
        floats = {k: v.astype(np.float64) for k, v in floats.items()}
        eps = np.array([EPS.get(o, NAN) for o in OPTIMIZERS])[codes["optimizer"]]
        floats["eps"] = np.where(np.isnan(floats["eps"]), eps, floats["eps"])
        cells = cls(**codes, **ints, **floats)  # type: ignore[arg-type]  # each name its type
        _validate(cells)
        return cells

    @classmethod
    def from_grid(cls, cells: Sequence[grid.Cell]) -> "Cells":
        """The grid's cells (handnorm and handvalue clip as norm and value do)."""
        rows = [settings(c) for c in cells]
        names = dict.fromkeys(k for r in rows for k in r)  # a setting of some cells only
        return cls.of(**{k: np.array([r.get(k, DEFAULTS.get(k)) for r in rows]) for k in names})

    def take(self, index: npt.ArrayLike) -> "Cells":
        """The cells at `index`, in its order."""
        return Cells(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _codes(values: npt.NDArray[np.generic], names: tuple[str, ...]) -> Ints:
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    unique, inverse = np.unique(values, return_inverse=True)  # a lookup per name, not per cell
    unknown = sorted(set(unique.tolist()) - set(names))
    if unknown:
        raise ValueError(f"unknown names {unknown}; expected one of {names}")
    return np.array([names.index(u) for u in unique], dtype=np.int64)[inverse]


def settings(c: grid.Cell) -> dict[str, object]:
    """One grid cell's settings, named as Cells' columns."""
    flat: dict[str, object] = {**c.loss_kwargs, **c.optimizer_kwargs, **c.clip_kwargs}
    loss_param = flat.pop("beta", flat.pop("delta", DEFAULTS["loss_param"]))
    betas: list[float] = flat.pop("betas", [DEFAULTS["beta1"], DEFAULTS["beta2"]])  # type: ignore[assignment]
    norm_type = norm_type_of(flat.pop("norm_type", 2.0))  # type: ignore[arg-type]  # params.py
    clip = CLIPS[GRID_CLIPS[c.clip]]
    named = {"loss_param": loss_param, "beta1": betas[0], "beta2": betas[1], "norm_type": norm_type}
    return {"loss": c.loss, "optimizer": c.optimizer, "clip": clip, "seed": c.seed, **flat, **named}


def _validate(c: Cells) -> None:
    """ValueError naming every setting out of its range (and the first cells with it)."""
    optimizer, loss = np.array(OPTIMIZERS)[c.optimizer], np.array(LOSSES)[c.loss]
    sgd = np.isin(optimizer, ("sgd", "momentum", "nesterov"))
    fractions = (c.momentum, c.dampening, c.beta1, c.beta2, c.alpha)
    nonnegative = (c.weight_decay, c.lr_decay, c.initial_accumulator_value)
    codes = zip((c.loss, c.optimizer, c.clip), (LOSSES, OPTIMIZERS, CLIPS), strict=True)
    checks = {
        "codes in LOSSES, OPTIMIZERS, CLIPS": np.any(
            [(v < 0) | (v >= len(n)) for v, n in codes], 0
        ),
        "lr > 0, finite": ~((c.lr > 0) & np.isfinite(c.lr)),
        "0 <= momentum, dampening, beta1, beta2, alpha < 1": ~np.all(
            [(v >= 0) & (v < 1) for v in fractions], 0
        ),
        "weight_decay, lr_decay, initial_accumulator_value >= 0": ~np.all(
            [v >= 0 for v in nonnegative], 0
        ),
        "eps > 0": ~sgd & ~(c.eps > 0),
        "nesterov: momentum > 0, dampening 0": (optimizer == "nesterov")
        & ((c.momentum <= 0) | (c.dampening != 0)),
        "smoothl1 beta, huber delta > 0": np.isin(loss, ("smoothl1", "huber"))
        & ~(c.loss_param > 0),
        "norm clip: max_norm > 0, norm_type >= 1": (c.clip == 1)
        & ~((c.max_norm > 0) & (c.norm_type >= 1)),
        "value clip: clip_value > 0": (c.clip == 2) & ~(c.clip_value > 0),
        "seed, dataset >= 0": (c.seed < 0) | (c.dataset < 0),
    }
    bad = [f"{k} (cells {np.flatnonzero(m)[:5].tolist()})" for k, m in checks.items() if m.any()]
    if bad:
        raise ValueError("invalid cells: " + "; ".join(bad))


@dataclass(frozen=True)
class Result:
    """Per cell (in the order of the cells given): measures named as
    pipeline.grid.trace.MEASURES, in
    the dtype trained; and the recorded steps, columns TRACE."""

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
    steps_to_target: Ints  # steps taken when first ||(w, b) - target|| <= tol; 0 if at the
    # start, -1 if never (or no target given)
    target_error: Floats  # ||final (w, b) - target||, in float64; nan without a target
    trace: Floats  # (recorded cells, steps, 9): every step of the cells `record` named;
    # nan from a cell's diverged step on
    strided: Floats  # (cells, ceil(steps / stride), 9): steps 0, stride, 2 stride, ...


def initial_parameters(seeds: Ints, dtype: torch.dtype) -> Tensor:
    """(2, cells): each cell's (weight, bias) where reference.train_cell starts, once per
    distinct seed: the draws of nn.Linear(1, 1).reset_parameters after
    torch.manual_seed(seed), in float32, converted to dtype. The same calls run on a
    generator of their own (torch.manual_seed costs 70 us and changes the global state)."""
    unique, inverse = np.unique(seeds, return_inverse=True)
    table = torch.empty(2, len(unique))
    for i, seed in enumerate(unique.tolist()):
        g = torch.Generator().manual_seed(seed)
        torch.nn.init.kaiming_uniform_(table[0, i : i + 1].view(1, 1), a=math.sqrt(5), generator=g)
        torch.nn.init.uniform_(table[1, i : i + 1], -1.0, 1.0, generator=g)  # 1 / sqrt(fan_in)
    return table.to(dtype)[:, torch.from_numpy(inverse)]


def _rules(cells: Cells, dtype: torch.dtype) -> tuple[Ints, list[tuple[slice, batched.Rule]]]:
    """The order that puts cells of one update rule side by side, and each rule with the
    slice of the sorted cells it steps."""
    family = np.array([batched.FAMILY[o] for o in OPTIMIZERS])[cells.optimizer]
    s = {f.name: getattr(cells, f.name) for f in fields(cells)[5:]}
    s |= {"nesterov": cells.optimizer == 2, "decoupled": cells.optimizer == 4}
    key = family * 16 + batched.branches(family, s)
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.diff(key[order], prepend=-1))
    rules = []
    for a, b in zip(starts, [*starts[1:], len(key)], strict=True):
        part = {k: v[order[a:b]].astype(np.float64) for k, v in s.items()}
        k = int(key[order[a]])
        rules.append((slice(int(a), int(b)), batched.rule(k // 16, k % 16, part, dtype)))
    return order, rules


class _Run:
    """One `train` call's state: parameters, the step's values, what is measured."""

    CHECKED = torch.tensor([0, 2, 3, 7, 8])  # rows of a step whose non-finite value stops a cell

    def __init__(
        self,
        cells: Cells,
        x: Tensor,
        y: Tensor,
        dtype: torch.dtype,
        batch_size: int = 0,
        start: npt.ArrayLike | None = None,
    ) -> None:
        n = len(cells)
        self.order, self.rules = _rules(cells, dtype)
        if start is not None:  # (cells, 2) in the caller's order, then sorted as the cells
            given = np.broadcast_to(np.asarray(start, dtype=np.float64), (n, 2))[self.order]
            start = torch.from_numpy(np.ascontiguousarray(given.T)).to(dtype)
        cells = cells.take(self.order)  # sorted by update rule from here on
        self.unsort = torch.from_numpy(np.argsort(self.order))
        losses = (cells.loss, cells.loss_param, cells.dataset, x, y, dtype)
        self.data = batched.Points(*losses)  # every point: the final loss is the data's
        batch = (batch_size, cells.seed) if batch_size else None
        self.points = batched.Points(*losses, batch) if batch else self.data
        self.clip = batched.Clip(
            cells.clip, cells.max_norm, cells.norm_type, cells.clip_value, dtype
        )
        self.p = initial_parameters(cells.seed, dtype) if start is None else start
        self.init = self.p.clone()
        self.row = torch.empty(len(TRACE), n, dtype=dtype)  # this step's values, TRACE order
        self.clipped, self.checked = (
            torch.empty(n, dtype=torch.bool),
            torch.empty(5, n, dtype=dtype),
        )
        self.alive = torch.ones(n, dtype=torch.bool)
        self.kept, self.clips = torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.int64)
        self.max_grad_norm = torch.zeros(n, dtype=dtype)
        self.views = [(r, self.p[:, s], self.row[4:6, s], self.row[7:9, s]) for s, r in self.rules]

    def step(self, t: int) -> None:
        """Step t of every cell; a cell stops at its first non-finite value and keeps
        its parameters from before that step."""
        row, g = self.row, self.row[2:4]
        self.points.draw(t)
        self.points.loss_and_grads(self.p, row[0], g)
        self.clip.l2(g, out=row[1])  # before clipping
        self.clip.apply(g, row[1], row[4:6])
        torch.ne(row[4], row[2], out=self.clipped).logical_or_(row[5] != row[3])
        row[6].copy_(self.clipped)
        for rule, p, clipped, out in self.views:
            rule.step(p, clipped, t, out)
        # finite iff x - x == 0 (inf - inf is nan); fewer ops than isfinite
        torch.index_select(row, 0, self.CHECKED, out=self.checked)
        self.alive &= self.checked.sub_(self.checked).sum(0) == 0
        self.kept += self.alive
        self.clips += self.clipped & self.alive
        torch.maximum(
            self.max_grad_norm, torch.where(self.alive, row[1], 0.0), out=self.max_grad_norm
        )
        torch.where(self.alive, row[7:9], self.p, out=self.p)

    def keep(self, index: Tensor, out: Tensor) -> None:
        """This step's values of the cells at sorted positions `index` into out (9, k)."""
        torch.index_select(self.row, 1, index, out=out)

    def result(self, steps: int, trace: Tensor, strided: Tensor, goal: "_Target | None") -> Result:
        """The measures, back in the order of the cells given."""
        loss, grads = torch.empty_like(self.max_grad_norm), torch.empty_like(self.p)
        self.data.loss_and_grads(self.p, loss, grads)  # where a diverged cell stopped, too
        u = self.unsort.numpy()
        kept, loss_np, p, init = (
            self.kept.numpy()[u],
            loss.numpy()[u],
            self.p.numpy()[:, u],
            self.init.numpy()[:, u],
        )
        finite_grads = torch.isfinite(grads).all(0).numpy()[u]
        diverged = kept < steps
        reason = np.select([~np.isfinite(loss_np), ~finite_grads], [0, 1], 2)
        if goal is None:
            reached, error = np.full(len(u), -1), np.full(len(u), NAN)
        else:
            reached = goal.reached.numpy()[u]
            reached = np.where(reached > steps, -1, reached)
            error = np.hypot(*(p.astype(np.float64) - goal.target.numpy()[:, u].astype(np.float64)))
        return Result(
            init_weight=init[0],
            init_bias=init[1],
            final_weight=p[0],
            final_bias=p[1],
            final_loss=loss_np,
            diverged_step=np.where(diverged, kept, -1),
            diverged_reason=np.where(diverged, reason, -1),
            steps_run=kept,
            max_grad_norm=self.max_grad_norm.numpy()[u],
            clip_fraction=self.clips.numpy()[u] / np.maximum(kept, 1),
            steps_to_target=reached,
            target_error=error,
            trace=trace.permute(2, 0, 1).numpy(),
            strided=strided.permute(2, 0, 1).numpy(),
        )


class _Target:
    """The first step count after which each cell is within tol of its target."""

    def __init__(self, target: npt.ArrayLike, tol: npt.ArrayLike, order: Ints, p: Tensor) -> None:
        """Targets (cells, 2) or (2,) and tolerances of the cells given, sorted by order;
        p: their initial parameters (a cell that starts within tol reached it after 0 steps)."""
        at = np.broadcast_to(np.asarray(target, dtype=np.float64), (len(order), 2))[order]
        self.target = torch.from_numpy(np.ascontiguousarray(at.T)).to(p.dtype)
        self.tol = torch.from_numpy(
            np.broadcast_to(np.asarray(tol, np.float64), order.shape)[order]
        ).to(p.dtype)
        self.diff, self.dist = torch.empty_like(p), torch.empty_like(p[0])
        self.never = torch.iinfo(torch.int64).max
        self.reached = torch.full_like(p[0], self.never, dtype=torch.int64)
        self.update(p, 0)

    def update(self, p: Tensor, taken: int) -> None:
        """Note the cells within tol after `taken` steps, if they were not before."""
        torch.sub(p, self.target, out=self.diff)
        torch.mul(self.diff[0], self.diff[0], out=self.dist).addcmul_(self.diff[1], self.diff[1])
        within = self.dist.sqrt_() <= self.tol
        torch.minimum(self.reached, torch.where(within, taken, self.never), out=self.reached)


def _points(v: npt.ArrayLike | Tensor, dtype: torch.dtype) -> Tensor:
    t = v if isinstance(v, Tensor) else torch.from_numpy(np.array(v, dtype=np.float64))  # a copy:
    # a read-only view (np.broadcast_to) would make torch warn
    return t.to(dtype).reshape(-1, t.shape[-1]).contiguous()  # the reference's x.to(dtype)


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
    Result.strided. `target` ((cells, 2) or (2,): w*, b*) and `tol`: steps_to_target.
    `batch_size` > 0: each step on a minibatch of that many points (batched.minibatch,
    seeded by the cell's seed); the recorded loss is the minibatch's, final_loss the data's.
    `start` ((cells, 2) or (2,)): each cell's initial (weight, bias) instead of its seed's."""
    xt, yt = _points(x, dtype), _points(y, dtype)
    if xt.shape != yt.shape or len(cells) == 0 or cells.dataset.max() >= len(xt) or steps < 0:
        raise ValueError(f"x {tuple(xt.shape)}, y {tuple(yt.shape)}: one row per dataset")
    with torch.inference_mode():
        if batch_size > xt.shape[1]:
            raise ValueError(f"batch_size {batch_size}: more than the {xt.shape[1]} points")
        run = _Run(cells, xt, yt, dtype, batch_size, start)
        rec = run.unsort[torch.from_numpy(np.asarray(record, dtype=np.int64).reshape(-1))]
        trace = torch.empty(steps, len(TRACE), len(rec), dtype=dtype)
        strided = torch.empty(
            -(-steps // stride) if stride else 0, len(TRACE), len(cells), dtype=dtype
        )
        goal = None if target is None else _Target(target, tol, run.order, run.p)
        for t in range(steps):
            run.step(t)
            if len(rec):
                run.keep(rec, trace[t])
            if stride and t % stride == 0:
                run.keep(run.unsort, strided[t // stride])
            if goal is not None:
                goal.update(run.p, t + 1)
        _blank(trace, torch.arange(steps), run.kept[rec])
        _blank(strided, torch.arange(len(strided)) * stride, run.kept[run.unsort])
        return run.result(steps, trace, strided, goal)


def _blank(kept: Tensor, step: Tensor, steps_run: Tensor) -> None:
    """Write nan into kept (rows, 9, cells) where row r's step, step[r], is one its cell
    did not keep (steps_run[c] <= step): only the stopped cells' columns are touched."""
    stopped = torch.nonzero(steps_run <= step[-1:]).squeeze(1) if len(step) else step
    if len(stopped):
        part = kept.index_select(2, stopped)
        part.masked_fill_((step[:, None] >= steps_run[stopped])[:, None, :], NAN)
        kept.index_copy_(2, stopped, part)
