"""The batched engine's training loop, one for every model: a step computes each cell's
loss and gradients (the model's forward), the gradient norm, the clipped gradients, each
update rule's step; a cell stops at its first non-finite loss, gradient or parameter and
keeps its parameters from before that step. Per cell it counts the steps kept and clipped
and the largest gradient norm; the model observes what else it measures (targets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch import Tensor

from pipeline.engine.cells import Cells
from pipeline.engine.clipping import Clipping

if TYPE_CHECKING:
    from pipeline.optimizers.spec import Rule

REASONS = ("loss", "gradient", "parameters")  # why a cell stopped: its first non-finite value
NAN = float("nan")


@dataclass(frozen=True)
class Layout:
    """Where a step's values sit among the rows of a model's value table."""

    rows: int  # values per cell and step
    loss: int
    norm: int  # the L2 norm of the gradients, before clipping
    grads: slice
    clipped_grads: slice  # what the optimizer applies
    clipped: int  # 1 where clipping changed a gradient
    params: slice  # after the step
    trace: slice  # the rows a recorded step keeps, in the model's trace order

    def checked(self) -> list[int]:
        """The rows whose non-finite value stops a cell: loss, gradients, parameters."""
        return [self.loss, *range(self.rows)[self.grads], *range(self.rows)[self.params]]


class Model(Protocol):
    layout: Layout

    def forward(self, p: Tensor, values: Tensor, t: int) -> None:
        """Write every cell's loss and gradients at parameters p (and the model's own
        values) for step t into their rows of `values`."""

    def norm(self, g: Tensor, out: Tensor) -> None:
        """Each cell's L2 norm of its gradients g into out."""

    def observe(self, values: Tensor, p: Tensor, t: int, alive: Tensor) -> None:
        """After step t: p holds each cell's parameters (its last kept ones if stopped),
        alive whether it still trains."""


class Training:
    """One `train` call's state: parameters, the step's values, what is counted. Cells
    come sorted by group; `groups` holds each group's update rule and slice of them."""

    def __init__(
        self,
        model: Model,
        cells: Cells,
        groups: Sequence[tuple[slice, Rule]],
        p: Tensor,
        dtype: torch.dtype,
    ) -> None:
        n, lay = len(cells), model.layout
        self.model, self.layout, self.p, self.init = model, lay, p, p.clone()
        self.clipping = Clipping(cells, dtype)
        self.values = torch.empty(lay.rows, n, dtype=dtype)  # this step's values
        self.checked_rows = torch.tensor(lay.checked())
        self.checked = torch.empty(len(lay.checked()), n, dtype=dtype)
        self.alive = torch.ones(n, dtype=torch.bool)
        self.kept, self.clips = torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.int64)
        self.max_grad_norm = torch.zeros(n, dtype=dtype)
        v = self.values
        self.views = [
            (rule, self.p[:, s], v[lay.clipped_grads, s], v[lay.params, s]) for s, rule in groups
        ]

    def step(self, t: int) -> None:
        """Step t of every cell."""
        v, lay = self.values, self.layout
        g, norm = v[lay.grads], v[lay.norm]
        self.model.forward(self.p, v, t)
        self.model.norm(g, out=norm)  # before clipping
        self.clipping.apply(g, norm, v[lay.clipped_grads])
        clipped = (v[lay.clipped_grads] != g).any(0)
        v[lay.clipped].copy_(clipped)
        for rule, p, grads, out in self.views:
            rule.step(p, grads, t, out)
        # finite iff x - x == 0 (inf - inf is nan); fewer ops than isfinite
        torch.index_select(v, 0, self.checked_rows, out=self.checked)
        self.alive &= self.checked.sub_(self.checked).sum(0) == 0
        self.kept += self.alive
        self.clips += clipped & self.alive
        torch.maximum(
            self.max_grad_norm, torch.where(self.alive, norm, 0.0), out=self.max_grad_norm
        )
        torch.where(self.alive, v[lay.params], self.p, out=self.p)
        self.model.observe(v, self.p, t, self.alive)

    def run(self, steps: int, record: Tensor, stride: int, unsort: Tensor) -> tuple[Tensor, Tensor]:
        """Every step; (each step of the cells at sorted positions `record`, (steps, values,
        recorded), and every stride-th step of every cell, unsorted), nan from a cell's
        stopping step on."""
        lay = self.layout
        kept = range(lay.rows)[lay.trace]
        trace = torch.empty(steps, len(kept), len(record), dtype=self.values.dtype)
        strided = torch.empty(
            -(-steps // stride) if stride else 0, len(kept), len(unsort), dtype=self.values.dtype
        )
        values = self.values[lay.trace]
        for t in range(steps):
            self.step(t)
            if len(record):
                torch.index_select(values, 1, record, out=trace[t])
            if stride and t % stride == 0:
                torch.index_select(values, 1, unsort, out=strided[t // stride])
        blank(trace, torch.arange(steps), self.kept[record])
        blank(strided, torch.arange(len(strided)) * stride, self.kept[unsort])
        return trace, strided

    def counts(self, steps: int, unsort: np.ndarray) -> dict[str, np.ndarray]:
        """Per cell, in the order given: steps kept and clipped, the largest gradient norm."""
        kept = self.kept.numpy()[unsort]
        return {
            "steps_run": kept,
            "max_grad_norm": self.max_grad_norm.numpy()[unsort],
            "clip_fraction": self.clips.numpy()[unsort] / np.maximum(kept, 1),
        }


def blank(kept: Tensor, step: Tensor, steps_run: Tensor) -> None:
    """Write nan into kept (rows, values, cells) where row r's step, step[r], is one its
    cell did not keep (steps_run[c] <= step): only the stopped cells' columns are touched."""
    stopped = torch.nonzero(steps_run <= step[-1:]).squeeze(1) if len(step) else step
    if len(stopped):
        part = kept.index_select(2, stopped)
        part.masked_fill_((step[:, None] >= steps_run[stopped])[:, None, :], NAN)
        kept.index_copy_(2, stopped, part)


def divergence(
    kept: np.ndarray, steps: int, loss: np.ndarray, finite_grads: np.ndarray
) -> dict[str, np.ndarray]:
    """Per cell: the step at which it stopped and why (a code into REASONS), -1 if it did
    not; `loss`, `finite_grads`: at the parameters it stopped with."""
    diverged = kept < steps
    reason = np.select([~np.isfinite(loss), ~finite_grads], [0, 1], 2)
    return {
        "diverged_step": np.where(diverged, kept, -1),
        "diverged_reason": np.where(diverged, reason, -1),
    }
