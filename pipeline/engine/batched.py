"""torch's arithmetic batched over cells: losses, sums, clipping and update rules.

Every function here computes for many cells at once what torch computes for one, with
the same rounding: the reference engine (one torch.optim loop per cell) and the batched
engine agree bit for bit, in float32 and float64. A value per cell is a tensor over
cells (its last axis); a cell's weight and bias are rows 0 and 1 of (2, cells) tensors
(the update rules step any number of rows: pipeline.engine.classification's six); every
hyperparameter is a per-cell tensor. Three facts of torch's CPU kernels shape the
code (all checked by tests/engine/test_regression.py):
- torch.sum adds a row's values in an order of its own (`sum_order` replays it), and
  nn.Linear's backward mm adds them in point order;
- torch.sqrt and torch.pow round differently from C's sqrt and pow, which vector_norm
  and Python's `beta ** step` use: numpy's sqrt and a strided tensor's pow are C's;
- torch's vectorised pow and hypot round differently from its scalar ones, so neither
  is used where a cell's position in the batch would pick one.
An op that is an exact identity for the cells that do not need it (x * 1, clamp at
+-inf, x / 1) stands in for a branch; where torch branches on a setting (`if momentum
!= 0`), cells are grouped by `branches` and each group runs torch's branch.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

LOSSES = ("mse", "l1", "smoothl1", "huber")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
CLIPS = ("none", "norm", "value")
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Settings = Mapping[str, Floats]  # hyperparameter name -> one value per cell (flags 0/1)


@dataclass(frozen=True)
class Losses:
    """Every loss as one rule per point: l(d) = (h |d|) |d| / k2 while |d| < c, else
    (|d| - c0) m; l'(d) / n = (d k1) / k2, else sign(d) kl. Arranged so each cell's
    values round as torch's kernel of its loss does. (cells,) each."""

    c: Tensor
    h: Tensor
    k2: Tensor
    c0: Tensor
    m: Tensor
    k1: Tensor
    kl: Tensor

    @classmethod
    def of(cls, loss: Ints, p: Floats, n: int, dtype: torch.dtype) -> "Losses":
        """The rule of each cell's loss (codes into LOSSES, p its beta or delta) for n points."""
        mse, l1, smooth, huber = (loss == i for i in range(len(LOSSES)))
        ones, norm = np.ones(len(loss)), np.float64(1.0 / n)
        columns = {
            "c": np.select([mse, l1], [np.inf, 0.0], p),
            "h": np.where(mse, 1.0, 0.5),
            "k2": np.where(smooth, p, 1.0),
            "c0": np.where(smooth | huber, 0.5 * p, 0.0),  # 0.5 beta is exact in any dtype
            "m": np.where(huber, p, 1.0),
            "k1": np.where(mse, 2.0 / n, norm) * ones,
            "kl": np.where(huber, np.float64(_round(norm, dtype)) * p, norm),  # torch: norm * delta
        }
        return cls(**{k: torch.from_numpy(v).to(dtype) for k, v in columns.items()})


def _round(value: np.float64, dtype: torch.dtype) -> float:
    return float(torch.tensor(value, dtype=torch.float64).to(dtype))


Tree = int | tuple["Tree", "Tree"] | None  # a point's value, the sum of two trees, or 0


def _zeros(width: int) -> list[Tree]:
    return [None] * width


def _add(a: Tree, b: Tree) -> Tree:
    return b if a is None else a if b is None else (a, b)


def _lanes(a: Sequence[Tree], b: Sequence[Tree]) -> list[Tree]:
    return [_add(u, v) for u, v in zip(a, b, strict=True)]


def _multi_row_sum(rows: list[list[list[Tree]]], width: int) -> list[list[Tree]]:
    """ATen's multi_row_sum: four running sums, cascaded through four levels."""
    levels, power = 4, max(4, (len(rows) - 1).bit_length() // 4)
    acc: list[list[list[Tree]]] = [[_zeros(width) for _ in range(4)] for _ in range(levels)]
    i = 0
    while i + (1 << power) <= len(rows):
        for row in rows[i : i + (1 << power)]:
            acc[0] = [_lanes(a, r) for a, r in zip(acc[0], row, strict=True)]
        i += 1 << power
        for j in range(1, levels):
            acc[j] = [_lanes(a, b) for a, b in zip(acc[j], acc[j - 1], strict=True)]
            acc[j - 1] = [_zeros(width) for _ in range(4)]
            if i & (((1 << power) - 1) << (j * power)):
                break
    for row in rows[i:]:
        acc[0] = [_lanes(a, r) for a, r in zip(acc[0], row, strict=True)]
    for j in range(1, levels):
        acc[0] = [_lanes(a, b) for a, b in zip(acc[0], acc[j], strict=True)]
    return acc[0]


def _row_sum(items: list[list[Tree]], width: int) -> list[Tree]:
    """ATen's row_sum: items in groups of four summed apart, then the rest, then the four."""
    whole = len(items) // 4
    partial = _multi_row_sum([items[4 * r : 4 * r + 4] for r in range(whole)], width)
    for item in items[4 * whole :]:
        partial[0] = _lanes(partial[0], item)
    for k in range(1, 4):
        partial[0] = _lanes(partial[0], partial[k])
    return partial[0]


def sum_order(n: int, lanes: int) -> Tree:
    """The order of the adds with which torch sums n contiguous values, as a tree (ATen's
    cascade_sum in aten/src/ATen/native/cpu/SumKernel.cpp, `lanes` values to a vector):
    run as plain adds over cells, it gives each cell torch's sum of its points bit for bit
    (up to the sign of a zero), whatever the number of cells."""
    if n < lanes:
        return _row_sum([[i] for i in range(n)], 1)[0]
    whole, final = n // lanes, None
    vector = _row_sum([[v * lanes + k for k in range(lanes)] for v in range(whole)], lanes)
    for i in [*range(whole * lanes, n), *vector]:
        final = _add(final, i)
    return final


def evaluate(tree: Tree, rows: Tensor) -> Tensor:
    """The sum `tree` of rows[i], by torch.add; each row a tensor over cells."""
    if tree is None:
        return torch.zeros_like(rows[0])
    if isinstance(tree, int):
        return rows[tree]
    return torch.add(evaluate(tree[0], rows), evaluate(tree[1], rows))


def lanes(dtype: torch.dtype) -> int:
    """Values of `dtype` to one of the vectors torch's CPU kernels run on."""
    width = 64 if torch.backends.cpu.get_cpu_capability() == "AVX512" else 32
    return width // torch.empty(0, dtype=dtype).element_size()


def minibatch(seeds: Ints, step: int, size: int, n: int) -> Ints:
    """(size, cells): the points each cell's step `step` trains on, drawn uniformly with
    replacement by a counter-based generator (splitmix64 of seed, step and slot): a cell's
    draws depend on its seed and the step only, not on its batch-mates or the chunking,
    and cells of one seed see the same minibatches (common random numbers)."""
    slot = np.arange(size, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as splitmix64 intends
        z = seeds.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (
            z
            + np.uint64(step) * np.uint64(0xD1B54A32D192ED03)
            + slot * np.uint64(0x8CB92BA72F3D8DD7)
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n)).astype(np.int64)


class Points:
    """The loss and gradients of every cell; points on the first axis, cells on the last.
    With a batch size, each step's loss and gradients are those of a minibatch (`draw`)."""

    def __init__(
        self,
        loss: Ints,
        p: Floats,
        dataset: Ints,
        x: Tensor,
        y: Tensor,
        dtype: torch.dtype,
        batch: tuple[int, Ints] | None = None,
    ) -> None:
        """Cells of losses `loss` (codes, p their beta or delta) on x[dataset], y[dataset];
        `batch`: (size, each cell's sampler seed) for minibatches of `size` points."""
        rows = torch.from_numpy(dataset)
        self.x, self.y = (v.T if len(v) == 1 else v.T[:, rows].contiguous() for v in (x, y))
        self.batch = batch
        if batch is not None:
            self.full = (
                self.x.expand(-1, len(loss)).contiguous(),
                self.y.expand(-1, len(loss)).contiguous(),
            )
            self.x, self.y = (torch.empty(batch[0], len(loss), dtype=dtype) for _ in range(2))
        n = self.n = x.shape[1] if batch is None else batch[0]
        self.losses, self.order = Losses.of(loss, p, n, dtype), sum_order(n, lanes(dtype))
        self.d, self.a, self.tmp = (torch.empty(n, len(loss), dtype=dtype) for _ in range(3))
        self.points = torch.empty(2, n, len(loss), dtype=dtype)  # loss term, dL/dy_hat
        self.quad = torch.empty(n, len(loss), dtype=torch.bool)

    def draw(self, step: int) -> None:
        """Take step `step`'s minibatch of every cell (nothing to do at full batch)."""
        if self.batch is not None:
            size, seeds = self.batch
            index = torch.from_numpy(minibatch(seeds, step, size, len(self.full[0])))
            torch.gather(self.full[0], 0, index, out=self.x)
            torch.gather(self.full[1], 0, index, out=self.y)

    def loss_and_grads(self, p: Tensor, loss: Tensor, grads: Tensor) -> None:
        """Write the loss at parameters p (2, cells) into loss and dL/dw, dL/db into grads."""
        c, d, a, tmp, s = self.losses, self.d, self.a, self.tmp, self.points
        torch.mul(self.x, p[0], out=d).add_(p[1]).sub_(self.y)  # as addmm rounds: w x + b - y
        torch.abs(d, out=a)
        torch.lt(a, c.c, out=self.quad)
        torch.mul(a, c.h, out=tmp).mul_(a).div_(c.k2)
        torch.where(self.quad, tmp, torch.sub(a, c.c0, out=s[0]).mul_(c.m), out=s[0])
        torch.mul(d, c.k1, out=tmp).div_(c.k2)
        torch.where(self.quad, tmp, torch.sign(d, out=s[1]).mul_(c.kl), out=s[1])
        sums = evaluate(self.order, s.transpose(0, 1))  # the loss's mean and dL/db
        torch.div(sums[0], self.n, out=loss)  # torch's mean: the sum, divided by n
        grads[1].copy_(sums[1])
        torch.mul(s[1], self.x, out=tmp)  # dL/dw as nn.Linear's backward mm: in point order
        grads[0].copy_(tmp[0])
        for i in range(1, self.n):
            grads[0].add_(tmp[i])


class Clip:
    """Per-cell clipping as torch.nn.utils does it: scale by min(1, max_norm / (norm +
    1e-6)) where the cell clips by norm (its p-norm of both gradients), then clamp to
    +-clip_value where it clips by value; other cells pass unchanged (x * 1, clamp at inf)."""

    def __init__(
        self, clip: Ints, max_norm: Floats, p: Floats, clip_value: Floats, dtype: torch.dtype
    ) -> None:
        """Cells clipping by `clip` (codes into CLIPS) at max_norm of norm type p, or clip_value."""
        by_norm, by_value = clip == CLIPS.index("norm"), clip == CLIPS.index("value")
        self.by_norm = bool(by_norm.any())
        self.unscaled = torch.from_numpy(~by_norm)
        self.max_norm = torch.from_numpy(np.where(by_norm, max_norm, 1.0)).to(dtype)
        inf = by_norm & np.isinf(p)
        self.inf = torch.from_numpy(inf) if inf.any() else None
        others = np.unique(p[by_norm & (p != 2) & ~inf])  # a few norm types, not one per cell
        self.others = [
            (float(q), torch.from_numpy(np.flatnonzero(by_norm & (p == q)))) for q in others
        ]
        bound = np.where(by_value, clip_value, np.inf)
        self.bound = torch.from_numpy(bound).to(dtype) if by_value.any() else None

    def l2(self, g: Tensor, out: Tensor) -> None:
        """Each cell's L2 norm of g (2, cells) into out, as clip_grad_norm_ computes it: a
        one-element gradient's norm is its magnitude, and vector_norm of the pair is
        std::sqrt(fma(gb, gb, gw * gw)). numpy's sqrt is IEEE's as std::sqrt is; torch.sqrt
        rounds differently (on this build) and would lose torch's bits."""
        torch.mul(g[0], g[0], out=out).addcmul_(g[1], g[1])
        np.sqrt(out.numpy(), out=out.numpy())

    def norm(self, g: Tensor, l2: Tensor) -> Tensor:
        """Each cell's norm of its own type, given the L2 norms `l2`."""
        norm = l2 if self.inf is None else torch.where(self.inf, g.abs().amax(0), l2)
        for q, cells in self.others:
            pairs = g[:, cells].T.contiguous()
            each = torch.linalg.vector_norm(pairs[:, :, None], q, dim=2)  # per parameter
            norm = norm.index_copy(0, cells, torch.linalg.vector_norm(each, q, dim=1))
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


# --- update rules: torch.optim's, one class per family ---------------------------------
FAMILIES = ("sgd", "adam", "rmsprop", "adagrad")  # one rule each; OPTIMIZERS map onto them
FAMILY = {"sgd": 0, "momentum": 0, "nesterov": 0, "adam": 1, "adamw": 1, "rmsprop": 2, "adagrad": 3}


class Rule(Protocol):
    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        """Write into `out` the parameters after step t (0-based) from parameters p and
        the (clipped) gradients g; update the rule's state."""


def branches(family: npt.NDArray[np.int64], s: Settings) -> npt.NDArray[np.int64]:
    """Per cell, the branches torch takes as bits: 1 weight decay != 0, 2 momentum != 0
    (sgd, rmsprop), 4 the family's flag (sgd: nesterov, adam: AdamW's decoupled decay,
    rmsprop: centered), 8 amsgrad (adam). Cells of one family and bits share a rule."""
    heavy = (s["momentum"] != 0) & ((family == 0) | (family == 2))
    flag = np.choose(family, [s["nesterov"], s["decoupled"], s["centered"], 0 * s["lr"]])
    amsgrad = (s["amsgrad"] != 0) & (family == 1)
    return (s["weight_decay"] != 0) * 1 + heavy * 2 + (flag != 0) * 4 + amsgrad * 8


def _t(values: npt.NDArray[np.float64], dtype: torch.dtype) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(dtype)


class SGD:
    """torch.optim.SGD: plain, heavy-ball momentum with dampening, Nesterov."""

    def __init__(self, s: Settings, bits: int, dtype: torch.dtype, rows: int = 2) -> None:
        self.decay, self.heavy, self.nesterov = bool(bits & 1), bool(bits & 2), bool(bits & 4)
        self.neg_lr, self.weight_decay = _t(-s["lr"], dtype), _t(s["weight_decay"], dtype)
        self.momentum, self.undamped = _t(s["momentum"], dtype), _t(1 - s["dampening"], dtype)
        self.buf = torch.empty(0, dtype=dtype)

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay:
            g = torch.addcmul(g, p, self.weight_decay)  # g + wd p
        if self.heavy:
            if t == 0:
                self.buf = g.clone()  # torch: the first buffer is the gradient, undamped
            else:
                self.buf.mul_(self.momentum).addcmul_(g, self.undamped)  # mu b + (1 - tau) g
            g = torch.addcmul(g, self.buf, self.momentum) if self.nesterov else self.buf
        torch.addcmul(p, g, self.neg_lr, out=out)  # p - lr g


class _Corrections:
    """Adam's bias corrections 1 - beta1 ** step and (1 - beta2 ** step) ** 0.5, in float64
    as torch computes them with Python floats. Python's ** is libm's pow, and so is
    torch's scalar pow kernel, which torch runs on a strided tensor (its vectorised pow
    rounds differently): it runs on the distinct betas only, then each cell takes its own."""

    def __init__(self, beta1: npt.NDArray[np.float64], beta2: npt.NDArray[np.float64]) -> None:
        unique, inverse = np.unique(np.concatenate([beta1, beta2]), return_inverse=True)
        self.base, self.exponent, self.bc = (_strided(unique) for _ in range(3))
        self.half = _strided(np.full(len(unique), 0.5))
        self.first, self.second = (torch.from_numpy(i) for i in np.split(inverse, 2))

    def __call__(self, step: int) -> tuple[Tensor, Tensor]:
        self.exponent.fill_(float(step))
        torch.neg(torch.pow(self.base, self.exponent), out=self.bc).add_(1)  # 1 - beta ** step
        bc2_sqrt = torch.pow(self.bc, self.half)
        return self.bc.index_select(0, self.first), bc2_sqrt.index_select(0, self.second)


def _strided(values: npt.NDArray[np.float64]) -> Tensor:
    """A float64 copy of values whose elements are not adjacent (stride 2)."""
    return torch.from_numpy(np.repeat(values[:, None], 2, axis=1))[:, 0]


class Adam:
    """torch.optim.Adam and AdamW (decoupled weight decay), with or without amsgrad."""

    def __init__(self, s: Settings, bits: int, dtype: torch.dtype, rows: int = 2) -> None:
        self.decay, self.decoupled, self.amsgrad = bool(bits & 1), bool(bits & 4), bool(bits & 8)
        self.weight_decay, self.eps = _t(s["weight_decay"], dtype), _t(s["eps"], dtype)
        self.shrink = _t(1 - s["lr"] * s["weight_decay"], dtype)  # AdamW's 1 - lr wd
        self.neg_lr, self.beta2 = _t(-s["lr"], torch.float64), _t(s["beta2"], dtype)
        self.lerp1, self.one_minus_beta2 = _t(1 - s["beta1"], dtype), _t(1 - s["beta2"], dtype)
        k = len(s["lr"])
        self.m, self.v, self.v_max = (torch.zeros(rows, k, dtype=dtype) for _ in range(3))
        self.corrections = _Corrections(s["beta1"], s["beta2"])
        self.step_size, self.bc2_sqrt = torch.empty(k, dtype=dtype), torch.empty(k, dtype=dtype)

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay and self.decoupled:
            p = torch.mul(p, self.shrink)  # AdamW: p (1 - lr wd) before the update
        elif self.decay:
            g = torch.addcmul(g, p, self.weight_decay)
        self.m.lerp_(g, self.lerp1)  # m + (1 - beta1) (g - m)
        self.v.mul_(self.beta2).addcmul_(g * self.one_minus_beta2, g)  # beta2 v + (1 - beta2) g^2
        bc1, bc2_sqrt = self.corrections(t + 1)
        torch.div(self.neg_lr, bc1, out=self.step_size)  # -lr / (1 - beta1 ** step)
        self.bc2_sqrt.copy_(bc2_sqrt)
        v = torch.maximum(self.v_max, self.v, out=self.v_max) if self.amsgrad else self.v
        denom = (v.sqrt() / self.bc2_sqrt).add_(self.eps)
        torch.addcdiv(p, self.m * self.step_size, denom, out=out)  # p - step_size m / denom


class RMSprop:
    """torch.optim.RMSprop, plain or centered, with or without momentum."""

    def __init__(self, s: Settings, bits: int, dtype: torch.dtype, rows: int = 2) -> None:
        self.decay, self.heavy, self.centered = bool(bits & 1), bool(bits & 2), bool(bits & 4)
        self.neg_lr, self.weight_decay = _t(-s["lr"], dtype), _t(s["weight_decay"], dtype)
        self.alpha, self.one_minus_alpha = _t(s["alpha"], dtype), _t(1 - s["alpha"], dtype)
        self.eps, self.momentum = _t(s["eps"], dtype), _t(s["momentum"], dtype)
        self.square_avg, self.grad_avg, self.buf = (
            torch.zeros(rows, len(s["lr"]), dtype=dtype) for _ in range(3)
        )

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay:
            g = torch.addcmul(g, p, self.weight_decay)
        self.square_avg.mul_(self.alpha).addcmul_(g * self.one_minus_alpha, g)
        if self.centered:
            self.grad_avg.lerp_(g, self.one_minus_alpha)
            avg = torch.addcmul(self.square_avg, self.grad_avg, self.grad_avg, value=-1).sqrt_()
        else:
            avg = self.square_avg.sqrt()
        avg.add_(self.eps)
        if self.heavy:
            self.buf.mul_(self.momentum).addcdiv_(g, avg)  # mu b + g / avg
            torch.addcmul(p, self.buf, self.neg_lr, out=out)
        else:
            torch.addcdiv(p, g * self.neg_lr, avg, out=out)  # p - lr g / avg


class Adagrad:
    """torch.optim.Adagrad, with learning-rate decay and an initial accumulator."""

    def __init__(self, s: Settings, bits: int, dtype: torch.dtype, rows: int = 2) -> None:
        self.decay = bool(bits & 1)
        self.weight_decay, self.eps = _t(s["weight_decay"], dtype), _t(s["eps"], dtype)
        self.neg_lr, self.lr_decay = _t(-s["lr"], torch.float64), _t(s["lr_decay"], torch.float64)
        init = _t(s["initial_accumulator_value"], dtype)
        self.sum = init.expand(rows, len(init)).clone()
        self.clr = torch.empty(len(init), dtype=dtype)

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay:
            g = torch.addcmul(g, p, self.weight_decay)
        torch.div(self.neg_lr, 1 + t * self.lr_decay, out=self.clr)  # -lr / (1 + (step-1) decay)
        self.sum.addcmul_(g, g)
        std = self.sum.sqrt().add_(self.eps)
        torch.addcdiv(p, g * self.clr, std, out=out)


RULES: dict[str, type[SGD] | type[Adam] | type[RMSprop] | type[Adagrad]] = {
    "sgd": SGD,
    "adam": Adam,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def rule(family: int, bits: int, s: Settings, dtype: torch.dtype, rows: int = 2) -> Rule:
    """The update rule of cells of one family taking the branches `bits`, for parameters
    of `rows` rows (the regression's weight and bias: 2)."""
    return RULES[FAMILIES[family]](s, bits, dtype, rows)
