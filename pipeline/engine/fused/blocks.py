"""Cells as the fused kernels take them: sorted so that cells of one loss, update rule (and
set of its branches), clipping form (and kind of norm) sit side by side, cut into blocks
of at most BLOCK cells that train together, and the per-cell rows each member's fused
form reads (its `columns`, its `coefficients`), in the sorted order.

A block is the unit of work: its cells' state stays in L1 for the whole step loop. Cells
are independent lanes of every vector operation, so a cell's bits depend neither on its
block nor on its place in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pipeline.clips import CLIPS
from pipeline.engine import rules
from pipeline.engine.cells import CLIP_NAMES, OPTIMIZER_NAMES, Cells
from pipeline.engine.clipping import FORMS

if TYPE_CHECKING:
    from pipeline.losses.spec import Fused

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Rows = Callable[[Mapping[str, Floats]], dict[str, Floats]]  # settings -> float64 rows
BLOCK = 256  # cells per block: 16 AVX-512 vectors of float32; a block's arrays stay in L2
LANES = 16  # a short block runs whole vectors of this many cells (AVX-512's float32)
CLIP_FORM = np.array(  # by clip code: 0 none, else 1 + its form's place in FORMS
    [0 if (f := CLIPS[n].batched) is None else 1 + FORMS.index(f) for n in CLIP_NAMES]
)


@dataclass(frozen=True)
class Blocks:
    """Cells sorted for the kernels (`order`: position -> index of the cells given)."""

    order: Ints
    table: Ints  # (blocks, 5): start, end, and the loss, rule and clip form codes
    flags: Bools  # (blocks, flags): the rule's FLAGS the block's cells take
    h: Floats  # (rows, cells): each cell's rule's fused columns, float64
    clip: Floats  # (rows, cells): each cell's clipping form's columns, float64


def missing(cells: Cells, losses: Sequence[Fused | None]) -> list[str]:
    """The members the cells use that have no fused form, named for the user."""
    found = [f"loss {cells.losses[c]}" for c in np.unique(cells.loss) if losses[c] is None]
    for c in np.unique(cells.optimizer):
        if OPTIMIZERS_RULE[c].FUSED is None:
            found.append(f"optimizer {OPTIMIZER_NAMES[c]}")
    for c in np.unique(cells.clip):
        form = CLIPS[CLIP_NAMES[c]].batched
        if form is not None and form.FUSED is None:
            found.append(f"clipping mode {CLIP_NAMES[c]}")
    return found


OPTIMIZERS_RULE = [rules.RULES[r] for r in rules.RULE_OF]  # by optimizer code


def _kinds(cells: Cells, form: Ints) -> Ints:
    """Each cell's kind within its clipping form (e.g. the norm type's: L2, inf, other)."""
    kind = np.zeros(len(cells), dtype=np.int64)
    for code in np.unique(form[form > 0]):
        fused = FORMS[code - 1].FUSED
        if fused is not None and fused.kind is not None:
            mine = form == code
            kind[mine] = fused.kind({k: v[mine] for k, v in cells.settings.items()})
    return kind


def rows(codes: Ints, columns: Sequence[Rows | None], settings: Mapping[str, Floats]) -> Floats:
    """(rows, cells): each cell's rows from the `columns` of its code's member."""
    width = 1
    found: dict[int, dict[str, Floats]] = {}
    for code in np.unique(codes):
        make = columns[code]
        if make is not None:
            mine = codes == code
            found[int(code)] = make({k: v[mine] for k, v in settings.items()})
            width = max(width, len(found[int(code)]))
    out = np.zeros((width, len(codes)))
    for code, named in found.items():
        mine = codes == code
        for j, values in enumerate(named.values()):
            out[j, mine] = values
    return out


def layout(cells: Cells, size: int = BLOCK) -> Blocks:
    """The cells sorted and cut into blocks of at most `size` cells."""
    rule, taken = rules.flags(cells)
    form = CLIP_FORM[cells.clip]
    key = cells.loss * len(rules.RULES) + rule  # one integer per kind of block
    for column in (*taken.T, form, _kinds(cells, form)):
        key = key * (int(column.max(initial=0)) + 1) + column
    _, inverse = np.unique(key, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.flatnonzero(np.diff(inverse[order], prepend=-1))
    table = []
    for a, b in zip(starts, [*starts[1:], len(order)], strict=True):
        for s in range(int(a), int(b), size):
            first = order[s]
            table.append([s, min(s + size, int(b)), cells.loss[first], rule[first], form[first]])
    blocks = np.array(table, dtype=np.int64).reshape(-1, 5)
    settings = {k: v[order] for k, v in cells.settings.items()}
    clip_rows = [None] + [f.FUSED.columns if f.FUSED else None for f in FORMS]
    return Blocks(
        order=order,
        table=blocks,
        flags=taken[order[blocks[:, 0]]] if len(blocks) else taken[:0],
        h=rows(rule[order], [r.FUSED.columns if r.FUSED else None for r in rules.RULES], settings),
        clip=rows(form[order], clip_rows, settings),
    )


def coefficients(
    codes: Ints, losses: Sequence[Fused | None], param: Floats, n: int, dtype: type
) -> npt.NDArray[np.floating]:
    """(rows, cells) in `dtype`: each cell's loss's fused coefficients for n points."""
    width, found = 1, {}
    for code in np.unique(codes):
        fused = losses[code]
        if fused is not None:
            mine = codes == code
            found[int(code)] = fused.coefficients(param[mine], n, dtype)
            width = max(width, len(found[int(code)]))
    out: npt.NDArray[np.floating] = np.zeros((width, len(codes)), dtype=dtype)
    for code, named in found.items():
        mine = codes == code
        for j, values in enumerate(named.values()):
            out[j, mine] = values
    return out
