"""The report's HTML primitives: numbers as text, tables, sections."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

import numpy as np

from pipeline.figures import DASH

if TYPE_CHECKING:
    import pandas as pd


def order_of(values: Iterable[object], preferred: Sequence[str] = ()) -> list[str]:
    """The distinct values, those in `preferred` first and in its order, then the rest."""
    seen = [str(v) for v in dict.fromkeys(values)]
    return [v for v in preferred if v in seen] + [v for v in seen if v not in preferred]


def number(value: object, digits: int = 4) -> str:
    """A table cell: `digits` significant digits, "∞" for never, yes/no for flags."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return DASH if np.isnan(value) else "∞" if np.isinf(value) else f"{value:.{digits}g}"
    return str(value)


def percent(share: float) -> str:
    return DASH if np.isnan(share) else f"{100 * share:.0f}%"


def table(frame: pd.DataFrame, digits: int = 4) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(number(v, digits))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f'<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>'


def section(id_: str, title: str, text: str, *body: str) -> str:
    """A section: its title, what it shows and how to read it, then tables and figures."""
    return f'<section id="{id_}"><h2>{escape(title)}</h2><p>{text}</p>{"".join(body)}</section>'


def details(label: str, body: str, shown: bool = False) -> str:
    """`body` folded under `label`; unfolded at first when `shown`."""
    return f"<details{' open' if shown else ''}><summary>{escape(label)}</summary>{body}</details>"
