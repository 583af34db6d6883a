"""The report's section on where clipping matters: per scenario, the ratio of IQM steps
with each clip mode to without, as a heatmap of optimizers x (loss, clip mode); where
clipping never acted, that is said instead of a ratio. Drawn from analysis's clip_ratios
and clip_idle tables (pipeline.study.analysis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline import figures as toolkit
from pipeline.study.report import markup

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

DASH = toolkit.DASH
IDLE = "marked <b>idle</b>, their runs are the unclipped ones: no ratio to read."


def section(ratios: pd.DataFrame, idle: pd.DataFrame, order: dict[str, list[str]]) -> str:
    if "none" not in order["clip"] or len(order["clip"]) < 2:
        text = "No clipped and unclipped runs to set side by side in this study."
        return markup.section("clipping", "Where clipping matters", text)
    said = []
    for clip in ratios.columns:
        r = ratios[clip].to_numpy(np.float64)
        both = np.isfinite(r) & (r > 0)
        said.append(
            f"clip {clip} is over 2&times; faster in {int((both & (r < 0.5)).sum())} and over "
            f"2&times; slower in {int((both & (r > 2)).sum())} of {len(r)}, reaches a target the "
            f"unclipped run never did in {int((r == 0).sum())} and misses one it reached in "
            f"{int(np.isinf(r).sum())}"
        )
    median = ratios.groupby(level="scenario").median()
    per = "; ".join(
        f"{s} " + ", ".join(f"{c} &times;{median.loc[s, c]:.2g}" for c in ratios.columns)
        for s in order["scenario"]
        if s in median.index
    )
    text = (
        "Per scenario, the IQM of steps with clipping over the IQM without, per optimizer "
        "(rows), loss and clip mode (columns), each at its own tuned lr. Blue: clipping is "
        "faster, red: slower; 0: only the clipped runs reached the target, &infin;: only the "
        f"unclipped ones, {DASH}: neither. {idle_note(idle, IDLE)} Over (scenario, loss, "
        f"optimizer): {'; '.join(said)}. Median ratio per scenario: {per}."
    )
    figure = toolkit.svg("clipping", lambda: heatmaps(ratios, idle, order))
    return markup.section("clipping", "Where clipping matters", text, figure)


def idle_note(idle: pd.DataFrame, consequence: str) -> str:
    """A sentence on the configurations whose clipping never acted (analysis.clip_idle),
    ending with `consequence`; nothing when there are none."""
    count, of = int(idle.to_numpy().sum()), idle.size
    if not count:
        return ""
    return (
        f"Clipping never acted in {count} of the {of} clipped configurations at their tuned "
        "lr (clip_fraction 0 on every reporting seed: the gradients stayed under the "
        f"threshold): {consequence}"
    )


def _grid(
    at: dict, scenario: str, optimizers: list[str], columns: list[tuple[str, str]], missing: object
) -> np.ndarray:
    """at[(scenario, loss, optimizer)][clip]: optimizers (rows) x (loss, clip) (columns)."""
    return np.array(
        [
            [at.get((scenario, loss, o), {}).get(c, missing) for loss, c in columns]
            for o in optimizers
        ]
    )


def heatmaps(ratios: pd.DataFrame, idle: pd.DataFrame, order: dict[str, list[str]]) -> Figure:
    """A heatmap per scenario, one a row: optimizers (rows) x loss and clip mode (columns),
    shaded by log2 of the ratio of IQM steps to no clipping; "idle" where clipping never
    acted (the clipped runs are the unclipped ones), unshaded."""
    scenarios, optimizers, clips = order["scenario"], order["optimizer"], list(ratios.columns)
    columns = [(loss, c) for loss in order["loss"] for c in clips]
    width = toolkit.WIDTH - 1.6  # the colour bar and the labels beside it
    size = (width, 0.26 * len(optimizers))
    fig, axes = toolkit.panels(len(scenarios), 1, size, (0.9, 0.7, 0.3, 0.6), (0.3, 0.95))
    at, quiet = ratios.to_dict("index"), idle.to_dict("index")
    for ax, scenario in zip(axes, scenarios, strict=True):
        value = _grid(at, scenario, optimizers, columns, np.nan).astype(np.float64)
        still = _grid(quiet, scenario, optimizers, columns, False).astype(bool)
        with np.errstate(divide="ignore"):
            shade = np.where(still, np.nan, np.clip(np.log2(value), -3, 3))
        text = np.where(still, "idle", "")
        toolkit.heatmap(ax, value, shade, optimizers, -3, 3, "RdBu_r", text)
        for k in range(len(clips), len(columns), len(clips)):
            ax.axvline(k, color="#fff", lw=3)
        ax.set_xticks(np.arange(len(columns)) + 0.5, [c for _, c in columns])
        for k, loss in enumerate(order["loss"]):  # a loss over its clip modes, under them
            ax.text((k + 0.5) * len(clips), len(optimizers) + 0.95, loss, ha="center", va="top")
        ax.set_title(scenario, y=1)
    box = (1 - 0.55 / fig.get_figwidth(), 0.3, 0.12 / fig.get_figwidth(), 0.4)  # right margin
    bar = fig.colorbar(axes[0].collections[0], cax=fig.add_axes(box))
    if bar.solids is not None:  # vector, as the rest: no embedded PNG
        bar.solids.set_rasterized(False)
    bar.set_ticks(range(-3, 4), labels=["⅛", "¼", "½", "1", "2", "4", "8"])
    bar.set_label("clipped / unclipped")
    return fig
