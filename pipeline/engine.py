"""The batched engine: any set of cells trained as one tensor program.

Every cell's parameters and optimizer state are columns of (2, cells) tensors (row 0 the
weight, row 1 the bias) and its data a row of (cells, points) ones; a step updates all
cells with a fixed sequence of tensor ops, never a Python loop over cells. Losses and
gradients are in closed form for y = w x + b (pipeline.closed_form, following torch's
kernels); the update rules are pipeline.batched_optim's. pipeline.reference trains the
same cells one by one with torch.optim, the oracle this engine is tested against.

A cell's numbers do not depend on the batch it sits in: every op is elementwise over
cells, sums over points are explicit adds (not a reduction kernel that may split
rows by their count), and a cell takes torch's branches by its own settings only.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from pipeline import batched_optim, grid, model, record
from pipeline.clip import norm_type_of

LOSSES = ("mse", "l1", "smoothl1", "huber")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
CLIPS = ("none", "norm", "value")
GRID_CLIPS = {"none": 0, "norm": 1, "value": 2, "handnorm": 1, "handvalue": 2}  # same rules
REASONS = ("loss", "gradient", "parameters")  # reference.divergence's, in its order
TRACE = record.COLUMNS[1:]  # a trace step's 9 values: a Row without its step number
NAN = math.nan
# a float setting's value where it is not given: torch's defaults; nan where required
# when the cell uses it (lr always; eps: adam and rmsprop 1e-8, adagrad 1e-10).
DEFAULTS = {"loss_param": 1.0, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
            "beta1": 0.9, "beta2": 0.999, "eps": NAN, "alpha": 0.99, "lr_decay": 0.0,
            "initial_accumulator_value": 0.0, "max_norm": NAN, "norm_type": 2.0,
            "clip_value": NAN}  # fmt: skip
EPS = {"adam": 1e-8, "adamw": 1e-8, "rmsprop": 1e-8, "adagrad": 1e-10}
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


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
    momentum: Floats  # sgd-family and rmsprop
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
        """Cells from columns, each an array or one value for all (vectorised; names as
        strings or codes). Required: loss, optimizer, lr, seed; ValueError when invalid."""
        given = dict(zip(columns, np.broadcast_arrays(*map(np.asarray, columns.values()))))
        n = len(np.atleast_1d(given["lr"]))
        col = {k: np.broadcast_to(np.asarray(v), (n,)) for k, v in given.items()}
        codes = {k: _codes(col.pop(k, np.asarray(d)), names, n)
                 for k, names, d in (("loss", LOSSES, ""), ("optimizer", OPTIMIZERS, ""),
                                     ("clip", CLIPS, "none"))}  # fmt: skip
        ints = {
            k: np.broadcast_to(col.pop(k, 0), (n,)).astype(np.int64) for k in ("seed", "dataset")
        }
        floats = {f.name: np.broadcast_to(col.pop(f.name, DEFAULTS.get(f.name, 0.0)), (n,)).astype(np.float64)
                  for f in fields(cls)[5:]}  # fmt: skip
        if col:
            raise ValueError(f"unknown settings: {', '.join(col)}")
        eps = np.array([EPS.get(o, NAN) for o in OPTIMIZERS])[codes["optimizer"]]
        floats["eps"] = np.where(np.isnan(floats["eps"]), eps, floats["eps"])
        cells = cls(**codes, **ints, **floats)  # type: ignore[arg-type]  # every field given
        _validate(cells)
        return cells

    @classmethod
    def from_grid(cls, cells: Sequence[grid.Cell]) -> "Cells":
        """The grid's cells (handnorm and handvalue are norm and value)."""
        rows = [_settings(c) for c in cells]
        names = dict.fromkeys(k for r in rows for k in r)  # a setting of some cells only
        return cls.of(**{k: np.array([r.get(k, DEFAULTS.get(k, NAN)) for r in rows]) for k in names})

    def take(self, index: npt.ArrayLike) -> "Cells":
        """The cells at `index`, in its order."""
        return Cells(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _codes(values: npt.NDArray[np.generic], names: tuple[str, ...], n: int) -> Ints:
    values = np.broadcast_to(values, (n,))
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    unique, inverse = np.unique(values, return_inverse=True)  # a lookup per name, not per cell
    unknown = sorted(set(unique.tolist()) - set(names))
    if unknown:
        raise ValueError(f"unknown names {unknown}; expected one of {names}")
    return np.array([names.index(u) for u in unique], dtype=np.int64)[inverse]


def _settings(c: grid.Cell) -> dict[str, float | int | str]:
    o, lk, ck = c.optimizer_kwargs, c.loss_kwargs, c.clip_kwargs
    betas = o.get("betas", [0.9, 0.999])
    assert isinstance(betas, list)  # noqa: S101  # params.py checked it: two floats
    flat = {k: float(v) for k, v in o.items() if k != "betas"}
    return {"loss": c.loss, "optimizer": c.optimizer, "clip": CLIPS[GRID_CLIPS[c.clip]],
            "seed": c.seed, "loss_param": float(lk.get("beta", lk.get("delta", 1.0))),  # type: ignore[arg-type]
            **flat, "beta1": betas[0], "beta2": betas[1],
            **{k: float(v) for k, v in ck.items() if k != "norm_type"},  # type: ignore[arg-type]
            "norm_type": norm_type_of(ck.get("norm_type", 2.0))}  # type: ignore[arg-type]  # fmt: skip


def _validate(c: Cells) -> None:
    o, k = np.array(OPTIMIZERS)[c.optimizer], np.array(LOSSES)[c.loss]
    checks = {
        "codes": (c.loss < 0) | (c.loss >= len(LOSSES)) | (c.optimizer < 0)
        | (c.optimizer >= len(OPTIMIZERS)) | (c.clip < 0) | (c.clip >= len(CLIPS)),
        "lr > 0": ~(c.lr > 0) | np.isinf(c.lr),
        "0 <= momentum, dampening, beta1, beta2, alpha < 1": ~np.all(
            [(v >= 0) & (v < 1) for v in (c.momentum, c.dampening, c.beta1, c.beta2, c.alpha)], 0),
        "eps, weight_decay, lr_decay, initial_accumulator_value >= 0 (eps > 0)": ~(
            (c.weight_decay >= 0) & (c.lr_decay >= 0) & (c.initial_accumulator_value >= 0)
            & ((c.eps > 0) | (o == "sgd") | (o == "momentum") | (o == "nesterov"))),
        "nesterov: momentum > 0 and dampening 0": (o == "nesterov") & ((c.momentum <= 0) | (c.dampening != 0)),
        "smoothl1 beta / huber delta > 0": np.isin(k, ("smoothl1", "huber")) & ~(c.loss_param > 0),
        "norm clip: max_norm > 0, norm_type >= 1": (c.clip == 1) & ~((c.max_norm > 0) & (c.norm_type >= 1)),
        "value clip: clip_value > 0": (c.clip == 2) & ~(c.clip_value > 0),
        "seed, dataset >= 0": (c.seed < 0) | (c.dataset < 0),
    }  # fmt: skip
    bad = [
        f"{name} (cells {np.flatnonzero(m)[:5].tolist()}...)"
        for name, m in checks.items()
        if m.any()
    ]
    if bad:
        raise ValueError("invalid cells: " + "; ".join(bad))


@dataclass(frozen=True)
class Result:
    """Per cell (in the order of the cells given): measures named as record.MEASURES, in
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


@dataclass(frozen=True)
class _Losses:
    """Every loss as one rule per point: l(d) = (h |d|) |d| / k2 while |d| < c, else
    (|d| - c0) m; l'(d) / n = (d k1) / k2, else sign(d) kl. Arranged so each cell's
    values round as torch's kernel of its loss does. (cells, 1) each."""

    c: Tensor
    h: Tensor
    k2: Tensor
    c0: Tensor
    m: Tensor
    k1: Tensor
    kl: Tensor

    @classmethod
    def of(cls, cells: Cells, n: int, dtype: torch.dtype) -> "_Losses":
        mse, l1, smooth, huber = (cells.loss == i for i in range(4))
        p, ones, norm = cells.loss_param, np.ones(len(cells)), np.float64(1.0 / n)
        columns = {
            "c": np.select([mse, l1], [np.inf, 0.0], p),
            "h": np.where(mse, 1.0, 0.5),
            "k2": np.where(smooth, p, 1.0),
            "c0": np.where(smooth | huber, 0.5 * p, 0.0),  # 0.5 beta is exact in any dtype
            "m": np.where(huber, p, 1.0),
            "k1": np.where(mse, 2.0 / n, norm) * ones,
            "kl": np.where(huber, np.float64(_round(norm, dtype)) * p, norm),  # torch: norm * delta
        }
        return cls(**{k: torch.from_numpy(v).to(dtype)[:, None] for k, v in columns.items()})


def _round(value: np.float64, dtype: torch.dtype) -> float:
    return float(torch.tensor(value, dtype=torch.float64).to(dtype))


def _sum_points(s: Tensor) -> Tensor:
    """The sums over s's last axis, by explicit halving adds in place (the order depends
    on the number of points only, not of cells); returns a view of s[..., 0]."""
    width = s.shape[-1]
    while width > 1:
        half = width // 2
        s[..., :half] += s[..., width - half : width]
        width -= half
    return s[..., 0]


class _Step:
    """Buffers and per-cell constants of one `train` call; cells sorted by update rule."""

    def __init__(self, cells: Cells, x: Tensor, y: Tensor, dtype: torch.dtype) -> None:
        n = x.shape[1]
        rows = torch.from_numpy(cells.dataset)
        self.x, self.y = (v.expand(len(cells), n) if len(v) == 1 else v[rows] for v in (x, y))
        self.losses = _Losses.of(cells, n, dtype)
        self.points = torch.empty(3, len(cells), n, dtype=dtype)  # loss term, g x, g per point
        self.d, self.a = (
            torch.empty(len(cells), n, dtype=dtype),
            torch.empty(len(cells), n, dtype=dtype),
        )
        self.tmp = torch.empty(len(cells), n, dtype=dtype)
        self.quad = torch.empty(len(cells), n, dtype=torch.bool)
        self.n = n

    def loss_and_grads(self, p: Tensor, loss: Tensor, grads: Tensor) -> None:
        """Write the loss at parameters p (2, cells) into loss and dL/dw, dL/db into grads."""
        c, d, a, tmp, s = self.losses, self.d, self.a, self.tmp, self.points
        torch.addcmul(p[1, :, None], self.x, p[0, :, None], out=d).sub_(self.y)  # w x + b - y
        torch.abs(d, out=a)
        torch.lt(a, c.c, out=self.quad)
        torch.mul(a, c.h, out=tmp).mul_(a).div_(c.k2)
        torch.where(self.quad, tmp, torch.sub(a, c.c0, out=s[0]).mul_(c.m), out=s[0])
        torch.mul(d, c.k1, out=tmp).div_(c.k2)
        torch.where(self.quad, tmp, torch.sign(d, out=s[2]).mul_(c.kl), out=s[2])
        torch.mul(s[2], self.x, out=s[1])
        sums = _sum_points(s)
        torch.div(sums[0], self.n, out=loss)  # torch's mean: the sum, divided by n
        grads.copy_(sums[1:])


class _Clip:
    """Per-cell clipping as torch.nn.utils does it: scale by min(1, max_norm / (norm +
    1e-6)) where the cell clips by norm (its p-norm of both gradients), then clamp to
    +-clip_value where it clips by value; other cells pass unchanged (x * 1, clamp at inf)."""

    def __init__(self, cells: Cells, dtype: torch.dtype) -> None:
        by_norm, by_value, p = cells.clip == 1, cells.clip == 2, cells.norm_type
        self.by_norm = bool(by_norm.any())
        self.unscaled = torch.from_numpy(~by_norm)
        self.max_norm = torch.from_numpy(np.where(by_norm, cells.max_norm, 1.0)).to(dtype)
        inf = by_norm & np.isinf(p)
        self.inf = torch.from_numpy(inf) if inf.any() else None
        general = np.flatnonzero(by_norm & (p != 2) & ~inf)
        self.general = torch.from_numpy(general) if len(general) else None
        # pow rounds differently in torch's vector and scalar kernels: pad to whole vectors
        width = -(-len(general) // 64) * 64
        padded = np.ones(width)
        padded[: len(general)] = p[general]
        self.p, self.inv_p = (torch.from_numpy(v).to(dtype) for v in (padded, 1 / padded))
        self.powered = torch.ones(2, width, dtype=dtype)
        bound = np.where(by_value, cells.clip_value, np.inf)
        self.bound = torch.from_numpy(bound).to(dtype) if by_value.any() else None

    def norm(self, g: Tensor, l2: Tensor) -> Tensor:
        """Each cell's norm of its own type, from the gradients and their L2 norms."""
        norm = l2 if self.inf is None else torch.where(self.inf, g.abs().amax(0), l2)
        if self.general is not None:
            k = len(self.general)
            self.powered[:, :k] = g.abs()[:, self.general]
            powered = self.powered.pow_(self.p)
            total = torch.add(powered[0], powered[1]).pow_(self.inv_p)
            norm = norm.index_copy(0, self.general, total[:k])
        return norm

    def apply(self, g: Tensor, l2: Tensor, out: Tensor) -> None:
        """Write the clipped gradients of g (2, cells) into out."""
        if self.by_norm:
            coef = self.norm(g, l2).add(1e-6).reciprocal_().mul_(self.max_norm)  # torch's order
            torch.mul(g, coef.clamp_(max=1.0).masked_fill_(self.unscaled, 1.0), out=out)
        else:
            out.copy_(g)
        if self.bound is not None:
            torch.clamp(out, -self.bound, self.bound, out=out)


def initial_parameters(seeds: Ints, dtype: torch.dtype) -> Tensor:
    """(2, cells): each cell's (weight, bias) as reference.train_cell starts, drawn in
    float32 once per distinct seed; the caller's random state is left as it was."""
    unique, inverse = np.unique(seeds, return_inverse=True)
    table = torch.empty(2, len(unique))
    with torch.random.fork_rng(devices=[]):
        for i, seed in enumerate(unique.tolist()):
            linear = model.seeded_model(seed).linear
            table[:, i] = torch.cat([linear.weight.detach().reshape(1), linear.bias.detach()])
    return table.to(dtype)[:, torch.from_numpy(inverse)]


def _rules(cells: Cells, dtype: torch.dtype) -> tuple[Ints, list[tuple[slice, batched_optim.Rule]]]:
    """The order that puts cells of one update rule side by side, and each rule with the
    slice of the sorted cells it steps."""
    family = np.array([batched_optim.FAMILY[o] for o in OPTIMIZERS])[cells.optimizer]
    s = {f.name: getattr(cells, f.name) for f in fields(cells)[5:]}
    s |= {"nesterov": cells.optimizer == 2, "decoupled": cells.optimizer == 4}
    key = family * 16 + batched_optim.branches(family, s)
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.diff(key[order], prepend=-1))
    rules = []
    for a, b in zip(starts, [*starts[1:], len(key)], strict=True):
        part = {k: v[order[a:b]].astype(np.float64) for k, v in s.items()}
        k = int(key[order[a]])
        rules.append((slice(int(a), int(b)), batched_optim.rule(k // 16, k % 16, part, dtype)))
    return order, rules


class _Run:
    """One `train` call's state: parameters, the step's values, what is measured."""

    CHECKED = torch.tensor([0, 2, 3, 7, 8])  # rows of a step whose non-finite value stops a cell

    def __init__(self, cells: Cells, x: Tensor, y: Tensor, dtype: torch.dtype) -> None:
        n = len(cells)
        self.order, self.rules = _rules(cells, dtype)
        cells = cells.take(self.order)  # sorted by update rule from here on
        self.unsort = torch.from_numpy(np.argsort(self.order))
        self.step_, self.clip = _Step(cells, x, y, dtype), _Clip(cells, dtype)
        self.p = initial_parameters(cells.seed, dtype)
        self.init = self.p.clone()
        self.row = torch.empty(len(TRACE), n, dtype=dtype)  # this step's values, TRACE order
        self.sq, self.ne = torch.empty(2, n, dtype=dtype), torch.empty(2, n, dtype=torch.bool)
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
        self.step_.loss_and_grads(self.p, row[0], g)
        torch.mul(g, g, out=self.sq)
        torch.add(self.sq[0], self.sq[1], out=row[1]).sqrt_()  # L2 norm before clipping
        self.clip.apply(g, row[1], row[4:6])
        torch.any(torch.ne(row[4:6], g, out=self.ne), 0, out=self.clipped)
        row[6].copy_(self.clipped)
        for rule, p, clipped, out in self.views:
            rule.step(p, clipped, t, out)
        torch.index_select(row, 0, self.CHECKED, out=self.checked)
        self.alive &= torch.isfinite(self.checked).all(0)
        self.kept += self.alive
        self.clips += self.clipped & self.alive
        torch.maximum(
            self.max_grad_norm, torch.where(self.alive, row[1], 0.0), out=self.max_grad_norm
        )
        torch.where(self.alive, row[7:9], self.p, out=self.p)

    def gather(self, index: Tensor, out: Tensor) -> None:
        """This step's values of the cells at sorted positions `index` into out (9, k);
        nan where a cell has stopped."""
        torch.index_select(self.row, 1, index, out=out)
        out.masked_fill_(~self.alive[index], NAN)

    def result(self, steps: int, trace: Tensor, strided: Tensor, goal: "_Target | None") -> Result:
        """The measures, back in the order of the cells given."""
        loss, grads = torch.empty_like(self.max_grad_norm), torch.empty_like(self.p)
        self.step_.loss_and_grads(self.p, loss, grads)  # where a diverged cell stopped, too
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
            init_weight=init[0], init_bias=init[1], final_weight=p[0], final_bias=p[1],
            final_loss=loss_np, diverged_step=np.where(diverged, kept, -1),
            diverged_reason=np.where(diverged, reason, -1), steps_run=kept,
            max_grad_norm=self.max_grad_norm.numpy()[u],
            clip_fraction=self.clips.numpy()[u] / np.maximum(kept, 1),
            steps_to_target=reached, target_error=error,
            trace=trace.permute(2, 0, 1).numpy(), strided=strided.permute(2, 0, 1).numpy(),
        )  # fmt: skip


class _Target:
    """The first step count after which each cell is within tol of its target."""

    def __init__(self, target: Floats, tol: Floats, p: Tensor) -> None:
        self.target = torch.from_numpy(np.ascontiguousarray(target.T)).to(p.dtype)
        self.tol = torch.from_numpy(tol).to(p.dtype)
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
    t = v if isinstance(v, Tensor) else torch.from_numpy(np.asarray(v, dtype=np.float64))
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
) -> Result:
    """Train every cell `steps` full-batch steps on the points x[d], y[d] of its dataset
    d = cells.dataset[i]; x, y are (datasets, n) (or (n,) for one), of any float dtype,
    converted to `dtype` as the reference converts them. `record`: the cells whose every
    step goes into Result.trace; `stride` > 0: every stride-th step of every cell into
    Result.strided. `target` ((cells, 2) or (2,): w*, b*) and `tol`: steps_to_target."""
    xt, yt = _points(x, dtype), _points(y, dtype)
    if xt.shape != yt.shape or len(cells) == 0 or cells.dataset.max() >= len(xt) or steps < 0:
        raise ValueError(f"x {tuple(xt.shape)}, y {tuple(yt.shape)}: one row per dataset")
    with torch.inference_mode():
        run = _Run(cells, xt, yt, dtype)
        rec = run.unsort[torch.from_numpy(np.asarray(record, dtype=np.int64).reshape(-1))]
        trace = torch.empty(steps, len(TRACE), len(rec), dtype=dtype)
        strided = torch.empty(
            -(-steps // stride) if stride else 0, len(TRACE), len(cells), dtype=dtype
        )
        goal = None
        if target is not None:
            n = len(cells)
            goal_at = np.broadcast_to(np.asarray(target, dtype=np.float64), (n, 2))[run.order]
            goal = _Target(
                goal_at, np.broadcast_to(np.asarray(tol, np.float64), (n,))[run.order], run.p
            )
        for t in range(steps):
            run.step(t)
            if len(rec):
                run.gather(rec, trace[t])
            if stride and t % stride == 0:
                run.gather(run.unsort, strided[t // stride])
            if goal is not None:
                goal.update(run.p, t + 1)
        return run.result(steps, trace, strided, goal)
