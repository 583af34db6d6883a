"""The study's report as one self-contained HTML page (placeholder: tables only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline import params

if TYPE_CHECKING:
    import pandas as pd


def html(
    tables: dict[str, pd.DataFrame], cells: pd.DataFrame, traces: pd.DataFrame, p: params.Params
) -> str:
    """The report page."""
    parts = [f"<h2>{name}</h2>" + t.to_html(index=False) for name, t in tables.items()]
    return "<!DOCTYPE html><html><body>" + "".join(parts) + "</body></html>"
