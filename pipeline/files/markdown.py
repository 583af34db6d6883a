"""Markdown tables: the one way the reports (compare, walkthrough, drift) write them.

Cells arrive as text. Each report formats its own numbers, because the precision means
something different in each: 4 significant digits rank cells, 8 check a gradient by hand,
3 say how far a metric moved.
"""

from collections.abc import Iterable, Sequence
from typing import Literal

Align = Literal["left", "right"]
RULE = 3  # dashes under a column: the fewest GitHub accepts


def escape(text: str) -> str:
    """`text` safe inside a cell: a bare `|` would end the cell early."""
    return text.replace("|", "\\|")


def _rule(width: int, side: Align) -> str:
    return "-" * (width - 1) + ":" if side == "right" else "-" * width


def _pad(row: Sequence[str], widths: Sequence[int], sides: Sequence[Align]) -> list[str]:
    cells = zip(row, widths, sides, strict=True)
    return [c.rjust(w) if side == "right" else c.ljust(w) for c, w, side in cells]


def _line(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    align: Sequence[Align] | None = None,
    *,
    tight: bool = False,
) -> str:
    """A GitHub Markdown table: header, rule and one line per row, with no final newline.

    Without `align` cells are written as they are. With it, each column is padded to its
    widest cell and justified to its side, and the rule marks right-aligned columns `--:`.
    `tight` writes the rule without spaces, `|---|---|`. ValueError if a row or `align`
    is not as long as the header.
    """
    lines = [[escape(c) for c in row] for row in [header, *rows]]
    if (bad := next((row for row in lines if len(row) != len(header)), None)) is not None:
        raise ValueError(f"{len(header)} columns in the header, {len(bad)} in the row {bad}")
    if align is not None and len(align) != len(header):
        raise ValueError(f"{len(header)} columns in the header, {len(align)} alignments")
    sides: Sequence[Align] = ["left"] * len(header) if align is None else align
    widths = [RULE if align is None else max(RULE, *map(len, c)) for c in zip(*lines, strict=True)]
    if align is not None:
        lines = [_pad(row, widths, sides) for row in lines]
    rule = [_rule(w, side) for w, side in zip(widths, sides, strict=True)]
    ruled = "|" + "|".join(rule) + "|" if tight else _line(rule)
    return "\n".join([_line(lines[0]), ruled, *map(_line, lines[1:])])
