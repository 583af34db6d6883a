"""The regression model's loss and gradients over points (points on the first axis, cells
on the last), as torch's kernels round them: each loss's batched rule (pipeline.losses),
the sums in torch's order, nn.Linear's backward, full batch or seeded minibatches."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from pipeline.engine.cells import REGRESSION, Cells
from pipeline.engine.ops import evaluate, lanes, minibatch, sum_order
from pipeline.losses import LOSSES
from pipeline.losses.spec import Piecewise, Pointwise

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
# each loss's rule group: the piecewise losses share one (0), any other has its own
LOSS_GROUP = np.array(
    [0 if isinstance(LOSSES[n].batched, Piecewise) else 1 + i for i, n in enumerate(REGRESSION)]
)


class Coefficients:
    """A piecewise rule's coefficients (pipeline.losses.spec.Piecewise), one per cell."""

    def __init__(self, loss: Ints, p: Floats, n: int, dtype: torch.dtype) -> None:
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        columns: dict[str, Floats] = {}
        for code in np.unique(loss):
            mine = loss == code
            rule = LOSSES[REGRESSION[code]].batched
            assert isinstance(rule, Piecewise)
            for k, v in rule.coefficients(p[mine], n, np_dtype).items():
                columns.setdefault(k, np.empty(len(loss)))[mine] = v
        for k, v in columns.items():
            setattr(self, k, torch.from_numpy(v).to(dtype))

    c: Tensor
    h: Tensor
    k2: Tensor
    c0: Tensor
    m: Tensor
    k1: Tensor
    kl: Tensor


class Points:
    """The loss and gradients of every cell; points on the first axis, cells on the last.
    With a batch size, each step's loss and gradients are those of a minibatch (`draw`)."""

    def __init__(
        self, cells: Cells, x: Tensor, y: Tensor, dtype: torch.dtype, batch: int = 0
    ) -> None:
        """Cells (sorted so that each loss group is contiguous) on x[dataset], y[dataset];
        `batch` > 0: minibatches of that many points, drawn per cell's seed."""
        rows, k = torch.from_numpy(cells.dataset), len(cells)
        self.x, self.y = (v.T if len(v) == 1 else v.T[:, rows].contiguous() for v in (x, y))
        self.seeds = cells.seed if batch else None
        if batch:
            self.full = (self.x.expand(-1, k).contiguous(), self.y.expand(-1, k).contiguous())
            self.x, self.y = (torch.empty(batch, k, dtype=dtype) for _ in range(2))
        n = self.n = batch or x.shape[1]
        self.order = sum_order(n, lanes(dtype))
        self.d, self.a, self.tmp = (torch.empty(n, k, dtype=dtype) for _ in range(3))
        self.points = torch.empty(2, n, k, dtype=dtype)  # loss term, dL/dy_hat
        self.quad = torch.empty(n, k, dtype=torch.bool)
        group = LOSS_GROUP[cells.loss]
        starts = np.flatnonzero(np.diff(group, prepend=-1))
        self.groups: list[tuple[slice, Coefficients | Pointwise]] = []
        for a, b in zip(starts, [*starts[1:], k], strict=True):
            part = slice(int(a), int(b))
            rule = LOSSES[REGRESSION[cells.loss[a]]].batched
            p = cells.settings["loss_param"][part]
            found = Coefficients(cells.loss[part], p, n, dtype) if group[a] == 0 else rule
            self.groups.append((part, found))  # type: ignore[arg-type]

    def draw(self, step: int) -> None:
        """Take step `step`'s minibatch of every cell (nothing to do at full batch)."""
        if self.seeds is not None:
            index = torch.from_numpy(minibatch(self.seeds, step, self.n, len(self.full[0])))
            torch.gather(self.full[0], 0, index, out=self.x)
            torch.gather(self.full[1], 0, index, out=self.y)

    def loss_and_grads(self, p: Tensor, loss: Tensor, grads: Tensor) -> None:
        """Write the loss at parameters p (2, cells) into loss and dL/dw, dL/db into grads."""
        d, tmp, s = self.d, self.tmp, self.points
        torch.mul(self.x, p[0], out=d).add_(p[1]).sub_(self.y)  # as addmm rounds: w x + b - y
        whole = len(self.groups) == 1
        for part, rule in self.groups:
            if isinstance(rule, Pointwise):
                s[0][:, part], s[1][:, part] = rule.point(d[:, part], self.n)
            elif whole:
                self._piecewise(rule, d, self.a, tmp, s[0], s[1], self.quad)
            else:
                views = (v[:, part] for v in (d, self.a, tmp, s[0], s[1], self.quad))
                self._piecewise(rule, *views)
        sums = evaluate(self.order, s.transpose(0, 1))  # the loss's mean and dL/db
        torch.div(sums[0], self.n, out=loss)  # torch's mean: the sum, divided by n
        grads[1].copy_(sums[1])
        torch.mul(s[1], self.x, out=tmp)  # dL/dw as nn.Linear's backward mm: in point order
        grads[0].copy_(tmp[0])
        for i in range(1, self.n):
            grads[0].add_(tmp[i])

    @staticmethod
    def _piecewise(
        c: Coefficients,
        d: Tensor,
        a: Tensor,
        tmp: Tensor,
        term: Tensor,
        slope: Tensor,
        quad: Tensor,
    ) -> None:
        """Each point's term and dL/dy_hat under a piecewise rule, as torch's kernels round."""
        torch.abs(d, out=a)
        torch.lt(a, c.c, out=quad)
        torch.mul(a, c.h, out=tmp).mul_(a).div_(c.k2)
        torch.where(quad, tmp, torch.sub(a, c.c0, out=term).mul_(c.m), out=term)
        torch.mul(d, c.k1, out=tmp).div_(c.k2)
        torch.where(quad, tmp, torch.sign(d, out=slope).mul_(c.kl), out=slope)
