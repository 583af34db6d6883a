"""The batched classification engine: seeded nn.Linear(2, 2) classifiers, any set of
cells trained as one tensor program.

The issue's study: points labelled by the side of y = 2x they fall on, the logits z of
nn.Linear(2, 2), nn.CrossEntropyLoss (with label smoothing) and nn.MultiMarginLoss for
contrast, under every optimizer and clip of the regression grid (pipeline.engine.batched's
update rules and clipping, stepping six parameter rows). With two classes both losses see
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

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from pipeline.engine import batched, regression
from pipeline.engine.batched import Floats, Ints

LOSSES = ("ce", "margin")  # nn.CrossEntropyLoss(label_smoothing=...), nn.MultiMarginLoss()
OPTIMIZERS, CLIPS, REASONS = regression.OPTIMIZERS, regression.CLIPS, regression.REASONS
PARAMS = ("w00", "w01", "w10", "w11", "b0", "b1")  # nn.Linear(2, 2): weight row-major, bias
# a trace step: loss, L2 gradient norm (before clipping) and accuracy at the parameters the
# step starts from; clipped (0/1); the parameters after the step
TRACE = ("loss", "grad_norm", "accuracy", "clipped", *PARAMS)
LINE = (1.0, 2.0)  # direction of y = 2x, the line that labels the points
NAN = math.nan


@dataclass(frozen=True)
class Cells:
    """Cells as columns: entry i of every array is cell i's. `shared` holds the optimizer,
    clip, seed, dataset and their settings as the regression's cells do (its loss and
    loss_param, the regression's, are not used)."""

    loss: Ints  # codes into LOSSES
    label_smoothing: Floats  # CrossEntropyLoss's, in [0, 1]; margin cells ignore it
    shared: regression.Cells

    def __len__(self) -> int:
        return len(self.loss)

    @classmethod
    def of(
        cls, loss: npt.ArrayLike, label_smoothing: npt.ArrayLike = 0.0, **columns: npt.ArrayLike
    ) -> "Cells":
        """Cells from columns, each an array or one value for all: loss names (or codes)
        into LOSSES, label_smoothing, and the columns regression.Cells.of takes (required:
        optimizer, lr, seed). ValueError names every invalid setting."""
        if "loss_param" in columns:  # the regression's beta or delta: no classification loss's
            raise ValueError("unknown settings: loss_param")
        arrays = np.broadcast_arrays(*map(np.asarray, (loss, label_smoothing, *columns.values())))
        names, smoothing = arrays[0], arrays[1].astype(np.float64)
        shared = regression.Cells.of(loss="mse", **dict(zip(columns, arrays[2:], strict=True)))
        codes = np.broadcast_to(_codes(names), (len(shared),))
        smoothing = np.broadcast_to(smoothing, (len(shared),))
        bad = {
            f"loss codes into {LOSSES}": (codes < 0) | (codes >= len(LOSSES)),
            "0 <= label_smoothing <= 1": ~((smoothing >= 0) & (smoothing <= 1)),
        }
        found = [f"{k} (cells {np.flatnonzero(m)[:5].tolist()})" for k, m in bad.items() if m.any()]
        if found:
            raise ValueError("invalid cells: " + "; ".join(found))
        return cls(codes.copy(), smoothing.copy(), shared)

    def take(self, index: npt.ArrayLike) -> "Cells":
        """The cells at `index`, in its order."""
        i = np.asarray(index, dtype=np.int64)
        return Cells(self.loss[i], self.label_smoothing[i], self.shared.take(i))


def _codes(values: npt.NDArray[np.generic]) -> Ints:
    """Codes of loss names (-1 for an unknown one), or the codes given."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    unique, inverse = np.unique(values, return_inverse=True)  # a lookup per name, not per cell
    return np.array([LOSSES.index(u) if u in LOSSES else -1 for u in unique.tolist()])[inverse]


@dataclass(frozen=True)
class Result:
    """Per cell, in the order of the cells given, in the dtype trained (angle_deg float64)."""

    init_params: Floats  # (cells, 6), columns PARAMS
    final_params: Floats  # after the last kept step
    final_loss: Floats  # at the final parameters (inf or nan where not finite)
    accuracy: Floats  # fraction of the cell's points argmax classifies right (ties: class 0)
    angle_deg: Floats  # between the final decision boundary and y = 2x, in [0, 90]
    steps_to_target: Ints  # steps taken when accuracy first is 1 (0: at the start; -1: never)
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
    table = torch.empty(len(unique), len(PARAMS))
    bound = 1 / math.sqrt(2)  # nn.Linear's bias bound, 1 / sqrt(in_features)
    for i, seed in enumerate(unique.tolist()):
        g = torch.Generator().manual_seed(seed)
        torch.nn.init.kaiming_uniform_(table[i, :4].view(2, 2), a=math.sqrt(5), generator=g)
        torch.nn.init.uniform_(table[i, 4:], -bound, bound, generator=g)
    return table.T.to(dtype)[:, torch.from_numpy(inverse)]


def cross_entropy(u: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """Per point, nn.CrossEntropyLoss's term and its derivative in u = z_y - z_other, for
    two classes with smoothed targets q (the true class: 1 - eps / 2) and 1 - q: the loss
    q softplus(-u) + (1 - q) softplus(u), the derivative sigmoid(u) - q. (So dL/dz_y =
    -dL/dz_other = sigmoid(u) - q: the softmax minus the smoothed one-hot.)"""
    e = u.abs().neg_().exp_()  # in (0, 1]: neither softplus nor sigmoid overflows
    right = u >= 0
    slope = torch.where(right, 1.0, e).div_(e + 1).sub_(q)  # sigmoid(u) - q
    return torch.where(right, 1 - q, -q).mul_(u).add_(e.log1p_()), slope


def multi_margin(u: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """Per point, nn.MultiMarginLoss's term (p = 1, margin 1) for two classes: max(0,
    1 - u) summed over the other class, divided by the number of classes; its derivative
    in u: -1/2 where 1 - u > 0, else 0 (torch's, at the kink too). q is not used."""
    h = 1 - u
    return h.clamp(min=0) / 2, (h > 0).to(u.dtype) / -2


POINT_LOSSES: dict[str, Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]] = {
    "ce": cross_entropy,
    "margin": multi_margin,
}


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


def _rules(cells: Cells, dtype: torch.dtype) -> tuple[Ints, list[tuple[slice, batched.Rule]]]:
    """The order that puts cells of one loss, then of one update rule, side by side; each
    rule with the slice of the sorted cells it steps."""
    c = cells.shared
    family = np.array([batched.FAMILY[o] for o in OPTIMIZERS])[c.optimizer]
    s = {f.name: getattr(c, f.name) for f in fields(c)[5:]}  # regression.Cells' float columns
    nesterov, adamw = OPTIMIZERS.index("nesterov"), OPTIMIZERS.index("adamw")
    s |= {"nesterov": c.optimizer == nesterov, "decoupled": c.optimizer == adamw}
    key = cells.loss * 64 + family * 16 + batched.branches(family, s)
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.diff(key[order], prepend=-1))
    rules = []
    for a, b in zip(starts, [*starts[1:], len(key)], strict=True):
        part = {k: v[order[a:b]].astype(np.float64) for k, v in s.items()}
        k = int(key[order[a]]) % 64
        rule = batched.rule(k // 16, k % 16, part, dtype, rows=len(PARAMS))
        rules.append((slice(int(a), int(b)), rule))
    return order, rules


def _rows(t: Tensor, block: slice) -> Tensor:
    """The rows of a (cells, n) tensor for the cells `block`; a (1, n) one (one dataset)
    serves every cell whole."""
    return t if len(t) == 1 else t[block]


class _Run:
    """One `train` call's state: parameters, the step's values, what is measured."""

    # rows of `values` whose non-finite value stops a cell: loss, gradients, parameters after
    CHECKED = torch.tensor([0, *range(10, 16), *range(4, 10)])

    def __init__(self, cells: Cells, x: Tensor, labels: Tensor, dtype: torch.dtype) -> None:
        n = len(cells)
        self.order, self.rules = _rules(cells, dtype)
        cells = cells.take(self.order)  # sorted by loss and update rule from here on
        self.unsort = torch.from_numpy(np.argsort(self.order))
        rows = torch.from_numpy(cells.shared.dataset)
        x, labels = (x, labels) if len(x) == 1 else (x[rows], labels[rows])  # (cells or 1, n)
        self.x0, self.x1 = x[..., 0].contiguous(), x[..., 1].contiguous()
        self.label = labels == 1
        self.sign = self.label.to(dtype) * 2 - 1  # s = 2 y - 1: u = s d
        self.points = labels.shape[1]
        q = torch.from_numpy(1 - cells.label_smoothing / 2).to(dtype)[:, None]
        ce = int(np.sum(cells.loss == LOSSES.index("ce")))  # ce cells first, then margin
        blocks = [(POINT_LOSSES["ce"], slice(0, ce)), (POINT_LOSSES["margin"], slice(ce, n))]
        self.blocks = [
            (f, b, q[b], _rows(self.sign, b), _rows(self.x0, b), _rows(self.x1, b))
            for f, b in blocks
            if b.stop > b.start
        ]
        self.correct = torch.empty(n, dtype=torch.int64)
        c = cells.shared
        self.clip = batched.Clip(c.clip, c.max_norm, c.norm_type, c.clip_value, dtype)
        self.p = initial_parameters(c.seed, dtype)
        self.init = self.p.clone()
        # this step's values: TRACE's 10, then 6 gradients, then 6 clipped gradients
        self.values = torch.empty(len(TRACE) + 12, n, dtype=dtype)
        self.checked = torch.empty(len(self.CHECKED), n, dtype=dtype)
        self.alive = torch.ones(n, dtype=torch.bool)
        self.kept, self.clips = torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.int64)
        self.max_grad_norm = torch.zeros(n, dtype=dtype)
        self.never = torch.iinfo(torch.int64).max
        self.reached = torch.full((n,), self.never, dtype=torch.int64)
        v = self.values
        self.views = [(r, self.p[:, s], v[16:22, s], v[4:10, s]) for s, r in self.rules]

    def forward(self, p: Tensor, loss: Tensor, grads: Tensor, accuracy: Tensor) -> None:
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

    def step(self, t: int) -> None:
        """Step t of every cell; a cell stops at its first non-finite value and keeps
        its parameters from before that step."""
        v = self.values
        loss, norm, accuracy, clipped, g, g_clipped = v[0], v[1], v[2], v[3], v[10:16], v[16:22]
        self.forward(self.p, loss, g, accuracy)
        torch.mul(g[0], g[0], out=norm)  # L2 norm of all six, before clipping
        for row in g[1:]:
            norm.addcmul_(row, row)
        norm.sqrt_()
        self.clip.apply(g, norm, g_clipped)
        was_clipped = (g_clipped != g).any(0)
        clipped.copy_(was_clipped)
        for rule, p, grads, out in self.views:
            rule.step(p, grads, t, out)
        # a stopped cell's p no longer moves: its accuracy reached 1 when it was kept, or never
        torch.minimum(self.reached, torch.where(accuracy == 1, t, self.never), out=self.reached)
        torch.index_select(v, 0, self.CHECKED, out=self.checked)
        # finite iff x - x == 0 (inf - inf is nan); fewer ops than isfinite
        self.alive &= self.checked.sub_(self.checked).sum(0) == 0
        self.kept += self.alive
        self.clips += was_clipped & self.alive
        torch.maximum(
            self.max_grad_norm, torch.where(self.alive, norm, 0.0), out=self.max_grad_norm
        )
        torch.where(self.alive, v[4:10], self.p, out=self.p)

    def result(self, steps: int, trace: Tensor, strided: Tensor) -> Result:
        """The measures, back in the order of the cells given."""
        loss, accuracy = torch.empty_like(self.max_grad_norm), torch.empty_like(self.max_grad_norm)
        grads = torch.empty_like(self.p)
        self.forward(self.p, loss, grads, accuracy)  # where a diverged cell stopped, too
        reached = torch.where(accuracy == 1, torch.minimum(self.reached, self.kept), self.reached)
        u = self.unsort.numpy()
        kept, loss_np, p = self.kept.numpy()[u], loss.numpy()[u], self.p.numpy()[:, u].T
        finite_grads = torch.isfinite(grads).all(0).numpy()[u]
        diverged = kept < steps
        reason = np.select([~np.isfinite(loss_np), ~finite_grads], [0, 1], 2)
        return Result(
            init_params=self.init.numpy()[:, u].T,
            final_params=p,
            final_loss=loss_np,
            accuracy=accuracy.numpy()[u],
            angle_deg=angle_deg(p),
            steps_to_target=np.where(reached.numpy()[u] == self.never, -1, reached.numpy()[u]),
            diverged_step=np.where(diverged, kept, -1),
            diverged_reason=np.where(diverged, reason, -1),
            steps_run=kept,
            max_grad_norm=self.max_grad_norm.numpy()[u],
            clip_fraction=self.clips.numpy()[u] / np.maximum(kept, 1),
            trace=trace.permute(2, 0, 1).numpy(),
            strided=strided.permute(2, 0, 1).numpy(),
        )


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
    """Train every cell `steps` full-batch steps on the points x[d], labels[d] of its
    dataset d = cells.shared.dataset[i]; x is (datasets, n, 2) (or (n, 2) for one), of
    any float dtype (converted to `dtype`), labels (datasets, n) in {0, 1}. `record`: the
    cells whose every step goes into Result.trace; `stride` > 0: every stride-th step of
    every cell into Result.strided."""
    xt, yt = _data(x, labels, dtype)
    if len(cells) == 0 or cells.shared.dataset.max() >= len(xt) or steps < 0:
        raise ValueError(f"{len(cells)} cells, {len(xt)} datasets, {steps} steps")
    with torch.inference_mode():
        run = _Run(cells, xt, yt, dtype)
        rec = run.unsort[torch.from_numpy(np.asarray(record, dtype=np.int64).reshape(-1))]
        trace = torch.empty(steps, len(TRACE), len(rec), dtype=dtype)
        rows = -(-steps // stride) if stride else 0
        strided = torch.empty(rows, len(TRACE), len(cells), dtype=dtype)
        values = run.values[: len(TRACE)]
        for t in range(steps):
            run.step(t)
            if len(rec):
                torch.index_select(values, 1, rec, out=trace[t])
            if stride and t % stride == 0:
                torch.index_select(values, 1, run.unsort, out=strided[t // stride])
        _blank(trace, torch.arange(steps), run.kept[rec])
        _blank(strided, torch.arange(rows) * stride, run.kept[run.unsort])
        return run.result(steps, trace, strided)


def _blank(kept: Tensor, step: Tensor, steps_run: Tensor) -> None:
    """Write nan into kept (rows, 10, cells) where row r's step, step[r], is one its cell
    did not keep (steps_run[c] <= step)."""
    kept.masked_fill_((step[:, None] >= steps_run[None, :])[:, None, :], NAN)
