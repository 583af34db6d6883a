"""Cells grouped by the update rule and the branches torch takes for them, so that each
group steps as one: torch.optim's loop takes branches on a cell's settings (`if
momentum != 0`), and cells that take the same ones run the same ops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pipeline.engine.cells import OPTIMIZER_NAMES, Cells
from pipeline.optimizers import OPTIMIZERS

if TYPE_CHECKING:
    import torch

    from pipeline.optimizers.spec import Rule

Ints = npt.NDArray[np.int64]
RULES = list(dict.fromkeys(OPTIMIZERS[n].rule for n in OPTIMIZER_NAMES))  # distinct rules
RULE_OF = np.array([RULES.index(OPTIMIZERS[n].rule) for n in OPTIMIZER_NAMES])  # by code


def flags(cells: Cells) -> tuple[Ints, npt.NDArray[np.bool_]]:
    """Each cell's rule (an index into RULES) and its flags, in its rule's FLAGS order
    (padded with False): those its optimizer's name fixes, then those its settings take."""
    rule = RULE_OF[cells.optimizer]
    width = max(len(r.FLAGS) for r in RULES)
    taken = np.zeros((len(cells), width), dtype=bool)
    for i, r in enumerate(RULES):
        mine = rule == i
        if not mine.any():
            continue
        derived = r.branches({k: v[mine] for k, v in cells.settings.items()})
        names = cells.optimizer[mine]
        for j, flag in enumerate(r.FLAGS):
            fixed = np.array([OPTIMIZERS[n].flags.get(flag, False) for n in OPTIMIZER_NAMES])
            taken[mine, j] = fixed[names] | derived.get(flag, False)
    return rule, taken


def groups(
    cells: Cells, first: Ints, dtype: torch.dtype, rows: int
) -> tuple[Ints, list[tuple[slice, Rule]]]:
    """The order that puts cells of one `first` key (e.g. the loss's rule), then of one
    update rule and set of flags, side by side; each group's rule with the slice of the
    sorted cells it steps (a model of `rows` parameter rows)."""
    rule, taken = flags(cells)
    key = np.column_stack([first, rule, taken])
    _, inverse = np.unique(key, axis=0, return_inverse=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")
    starts = np.flatnonzero(np.diff(inverse.reshape(-1)[order], prepend=-1))
    found = []
    for a, b in zip(starts, [*starts[1:], len(order)], strict=True):
        r = RULES[rule[order[a]]]
        named = {f: bool(taken[order[a], j]) for j, f in enumerate(r.FLAGS)}
        part = {k: v[order[a:b]] for k, v in cells.settings.items()}
        found.append((slice(int(a), int(b)), r(part, named, dtype, rows)))
    return order, found
