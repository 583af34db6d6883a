"""Figures of the grid: loss curves, and (weight, bias) paths over each loss's contours.

Drawn on bare `Figure`s (no pyplot, so no backend or global state). PNGs carry no
software stamp and no timestamp, so equal inputs give equal bytes.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from pipeline import figures
from pipeline.grid import Cell
from pipeline.grid.surface import Array, Point, Surface, bounds

DPI = 80  # small PNGs: 84 per-cell plots must be drawn in about a second
PNG_METADATA = {"Software": None}  # savefig stamps the matplotlib version unless told not to
PNG_COMPRESSION = 1  # zlib level: 3x faster to write than the default 6, files ~1.5x larger


@dataclass(frozen=True)
class Curve:
    """What the plots show of one cell."""

    cell: Cell
    steps: Array
    loss: Array  # per step, before the step's update
    path: Array  # (weight, bias) rows: the initial point, then after each step
    diverged: bool

    @classmethod
    def of(cls, cell: Cell, trace: pd.DataFrame, init: Point, diverged: bool) -> "Curve":
        """From a trace with record.COLUMNS and the (weight, bias) before the first step."""
        path = np.vstack([np.array([init]), trace[["weight", "bias"]].to_numpy(np.float64)])
        steps, loss = (trace[c].to_numpy(np.float64) for c in ("step", "loss"))
        return cls(cell, steps, loss, path, diverged)


def _panels(curves: Sequence[Curve], height: float) -> tuple[Figure, dict[str, Axes]]:
    """A figure with one subplot per clipping mode, in grid order."""
    clips = list(dict.fromkeys(r.cell.clip for r in curves))
    width = 3.0 * len(clips) + 1.2  # + the legend
    fig = Figure(figsize=(width, height), dpi=DPI)
    axes = fig.subplots(1, len(clips), sharex=True, sharey=True, squeeze=False)[0]
    # fixed margins: constrained layout measures every tick label, twice as slow overall
    fig.subplots_adjust(left=0.85 / width, right=1 - 1.3 / width, bottom=0.14, top=0.9, wspace=0.08)
    for ax, clip in zip(axes, clips, strict=True):
        ax.set_title(f"clip: {clip}", fontsize="medium", y=1.01)  # y: skips a layout pass
    return fig, dict(zip(clips, axes, strict=True))


def _finish(fig: Figure, panels: dict[str, Axes]) -> None:
    """Tick labels on the outer panels only; a legend with one entry per optimizer (not
    per seed) right of the panels: placing it "best" inside an axes costs more than
    drawing the whole figure."""
    for ax in panels.values():
        ax.label_outer()
    handles, labels = next(iter(panels.values())).get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    fig.legend(unique.values(), unique.keys(), loc="center right", fontsize="small")


def _colors(curves: Sequence[Curve]) -> dict[str, str]:
    return figures.colors(list(dict.fromkeys(r.cell.optimizer for r in curves)))


def loss_figure(curves: Sequence[Curve], threshold: float) -> Figure:
    """Loss per step, log scale, optimizers overlaid, one subplot per clipping mode."""
    fig, panels = _panels(curves, 3.4)
    colors = _colors(curves)
    for r in curves:
        loss = np.where(r.loss > 0, r.loss, np.nan)  # an exact zero has no place on a log scale
        color = colors[r.cell.optimizer]
        panels[r.cell.clip].plot(r.steps, loss, color=color, lw=1, label=r.cell.optimizer)
    for ax in panels.values():
        ax.axhline(threshold, color="gray", ls=":", lw=1)
        ax.set_yscale("log")
        # plain "1e-05" labels, few of them: mathtext labels cost a third of the stage
        ax.yaxis.set_major_locator(ticker.LogLocator(numticks=6))
        ax.yaxis.set_major_formatter(ticker.LogFormatter())
        ax.minorticks_off()
        ax.set_xlabel("step")
        ax.set_ylabel(f"{curves[0].cell.loss} loss")
    _finish(fig, panels)
    return fig


def trajectory_figure(curves: Sequence[Curve], surface: Surface, optimum: Point) -> Figure:
    """Every optimizer's (weight, bias) path over the contours, one subplot per clip."""
    fig, panels = _panels(curves, 3.8)
    colors = _colors(curves)
    for ax in panels.values():
        surface.draw(ax, optimum)
    for r in curves:
        path, color = r.path, colors[r.cell.optimizer]
        ax = panels[r.cell.clip]
        ax.plot(path[:, 0], path[:, 1], color=color, lw=1, label=r.cell.optimizer)
        ax.plot(path[0, 0], path[0, 1], "o", color=color, markersize=4)
    _finish(fig, panels)
    return fig


def save_cells(folder: Path, curves: Sequence[Curve], surface: Surface, optimum: Point) -> None:
    """`<cell>.png` per run. Blitted: contours, ticks and labels are drawn once, then each
    path over a copy of them (a full redraw per cell costs about ten times more)."""
    fig = Figure(figsize=(3.0, 3.0), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.2, right=0.95, bottom=0.15, top=0.9)
    surface.draw(ax, optimum)
    (line,) = ax.plot([], [], color="tab:blue", lw=1)
    (start,) = ax.plot([], [], "o", color="tab:blue", markersize=4)
    (end,) = ax.plot([], [], "x", color="tab:red", markersize=6)
    title = ax.set_title("", fontsize="medium", y=1.01)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    for r in curves:
        path = r.path
        line.set_data(path[:, 0], path[:, 1])
        start.set_data(path[:1, 0], path[:1, 1])
        end.set_data(path[-1:, 0], path[-1:, 1])
        title.set_text(r.cell.name)
        canvas.restore_region(background)
        for artist in (line, start, end, title):
            fig.draw_artist(artist)
        pixels = Image.fromarray(np.asarray(canvas.buffer_rgba()))
        pixels.save(folder / f"{r.cell.name}.png", format="png", compress_level=PNG_COMPRESSION)


def save(fig: Figure, path: Path) -> None:
    fig.savefig(path, metadata=PNG_METADATA, pil_kwargs={"compress_level": PNG_COMPRESSION})


def draw(
    folder: Path,
    curves: Sequence[Curve],
    data: tuple[Array, Array],
    optimum: Point,
    threshold: float,
) -> None:
    """Into `folder`: loss_<loss>.png, trajectory_<loss>.png and cells/<cell>.png."""
    (folder / "cells").mkdir(parents=True, exist_ok=True)
    for loss in dict.fromkeys(r.cell.loss for r in curves):
        group = [r for r in curves if r.cell.loss == loss]
        # every start, but only converging paths: a diverging one would shrink the rest to a dot
        points = [r.path[:1] for r in group] + [r.path for r in group if not r.diverged]
        surface = Surface.of(group[0].cell, *data, bounds(optimum, points))
        save(loss_figure(group, threshold), folder / f"loss_{loss}.png")
        save(trajectory_figure(group, surface, optimum), folder / f"trajectory_{loss}.png")
        save_cells(folder / "cells", group, surface, optimum)
