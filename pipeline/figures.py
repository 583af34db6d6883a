"""The one figure toolkit of gradlab's figures (the grid's PNGs and the study's report):
the optimizer palette, panel grids of fixed size, log axes, annotated heatmaps, and SVG
that carries no date or URL.

Figures are drawn on bare matplotlib `Figure`s (no pyplot, so no backend or global
state); rcParams are set only inside `rc_context`. Equal inputs give equal bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import matplotlib
import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip  # matplotlib's tab10, per optimizer
DASH = "\u2013"  # a missing value
SUPERSCRIPT = "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
POWERS = str.maketrans("-0123456789", SUPERSCRIPT)  # log tick labels as plain text
WIDTH = 11.5  # inches: the report's 1,100 px column at 96 px an inch, so a figure no wider
# is drawn at its own size or larger, and its 7-point type stays at least 9 px high
RC: dict[RcKeyType, object] = {  # type kept as text (smaller and faster than paths)
    "svg.fonttype": "none",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
}


def svg(salt: str, draw: Callable[[], Figure]) -> str:
    """The figure `draw` makes, as inline SVG: no XML prolog or metadata (they name URLs),
    no namespaces (HTML needs none), no structural ids (the same in every figure)."""
    with matplotlib.rc_context({**RC, "svg.hashsalt": f"gradlab-{salt}"}):
        buffer = io.StringIO()
        draw().savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg[svg.index("<svg") :], flags=re.S)
    svg = re.sub(r' xmlns(:xlink)?="[^"]*"| id="[\w.]+_\d+"', "", svg)
    svg = re.sub(r">\s+<", "><", re.sub(r"\s*\n\s*", " ", svg))  # path data spans lines
    return f"<figure>{svg}</figure>"


def panels(
    n: int,
    cols: int,
    size: tuple[float, float],
    margin: tuple[float, float, float, float],
    gap: tuple[float, float] = (0.3, 0.42),
) -> tuple[Figure, list[Axes]]:
    """n axes of `size` inches, `cols` a row, margin (left, right, top, bottom) and gap
    (between columns, between rows) in inches. Fixed and unshared: constrained layout and
    24 shared axes each cost seconds."""
    from matplotlib.figure import Figure

    rows, (left, right, top, bottom) = -(-n // cols), margin
    width = left + right + cols * size[0] + (cols - 1) * gap[0]
    height = top + bottom + rows * size[1] + (rows - 1) * gap[1]
    fig = Figure(figsize=(width, height))
    grid = fig.add_gridspec(
        rows,
        cols,
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=gap[0] / size[0],
        hspace=gap[1] / size[1],
    )
    return fig, [fig.add_subplot(grid[i // cols, i % cols]) for i in range(n)]


def labelled(axes: list[Axes], cols: int, xlabel: str, ylabel: str) -> None:
    """Every panel keeps its tick labels, so that any panel reads alone; the x label under
    every panel, the y label beside the first of each row."""
    for i, ax in enumerate(axes):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel if i % cols == 0 else "")


def legend_below(ax: Axes, drop: float, ncols: int, **kwargs: object) -> None:
    """The panel's legend under it, outside its data: its top `drop` inches below the
    panel (clear of the tick and axis labels), centred, `ncols` columns."""
    height = ax.get_position().height * ax.get_figure().get_figheight()  # type: ignore[union-attr]
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -drop / height), ncols=ncols, frameon=False,
        handlelength=1.5, columnspacing=1.0, **kwargs,
    )  # fmt: skip


def log_axis(ax: Axes, axis: str, ticks: int = 7) -> None:
    """A log axis labelled 10\u207b\u00b9 in plain text (mathtext labels cost more than the
    panel), at most about `ticks` ticks, no minor ticks."""
    from matplotlib import ticker

    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(ticker.LogLocator(numticks=ticks))
    power = ticker.FuncFormatter(lambda v, _: "10" + f"{np.log10(v):.0f}".translate(POWERS))
    target.set_major_formatter(power)
    target.set_minor_locator(ticker.NullLocator())


def colors(names: Sequence[str]) -> dict[str, str]:
    return {name: COLORS[i % len(COLORS)] for i, name in enumerate(names)}


def heatmap(
    ax: Axes,
    value: np.ndarray,
    shade: np.ndarray,
    labels: list[str],
    vmin: float,
    vmax: float,
    cmap: str,
    text: np.ndarray | None = None,
) -> None:
    """value annotated over its shade (NaN grey), a row per label; white type on the ends;
    `text`, where given (non-empty), written instead of the value."""
    colors = matplotlib.colormaps[cmap].with_extremes(bad="#e4e4e4")
    ax.pcolormesh(np.ma.masked_invalid(shade), cmap=colors, vmin=vmin, vmax=vmax)
    middle, reach = (vmin + vmax) / 2, (vmax - vmin) / 2
    for (i, j), v in np.ndenumerate(value):
        dark = np.isfinite(shade[i, j]) and abs(shade[i, j] - middle) > 0.6 * reach
        kind = {"color": "#fff" if dark else "#000", "fontsize": 7}
        label = str(text[i, j]) if text is not None and text[i, j] else ratio_label(v)
        ax.text(j + 0.5, i + 0.5, label, ha="center", va="center", fontdict=kind)
    ax.set(yticks=np.arange(len(labels)) + 0.5, yticklabels=labels, ylim=(len(labels), 0))


def ratio_label(r: float) -> str:
    return DASH if np.isnan(r) else "∞" if np.isinf(r) else "0" if r == 0 else f"{r:.2g}"
