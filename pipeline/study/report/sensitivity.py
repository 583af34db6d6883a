"""The report's learning-rate sensitivity section, as small multiples: per scenario, a
panel per loss (rows) and optimizer (columns), each with its own two lines (no clipping,
norm clipping), the unclipped runs' band and the analytic edge. Drawn from analysis's
sensitivity and stability tables (pipeline.study.analysis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.lines import Line2D

from pipeline import figures as toolkit
from pipeline.study.configuration import CONFIG
from pipeline.study.report import markup
from pipeline.study.report.figures import CLIP_COLORS, never_axis

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

CLIPS = {"none": "-", "norm": "--"}  # value left out: a third line was a blur
EDGE = "#555"


def decades(low: float, high: float, most: int = 3) -> list[int]:
    """Every k-th power of ten within [low, high] (its exponent), k the smallest step
    keeping at most `most`."""
    powers = list(range(int(np.ceil(np.log10(low))), int(np.floor(np.log10(high))) + 1))
    return powers[:: -(-len(powers) // most)] if powers else []


Curves = dict[tuple[str, ...], "pd.DataFrame"]  # configuration -> its quantiles per lr
Edges = dict[tuple[str, ...], list[float]]  # (scenario, loss, optimizer) -> analytic edges


def split(table: pd.DataFrame, stability: pd.DataFrame) -> tuple[Curves, Edges]:
    """analysis's sensitivity table per configuration, and the unclipped analytic edges
    per (scenario, loss, optimizer) of its stability table: looked up once, not per panel."""
    curves = {key: part.droplevel(list(CONFIG)) for key, part in table.groupby(level=list(CONFIG))}
    edges: Edges = {}
    unclipped = stability[stability["clip"] == "none"] if len(stability) else stability
    for row in unclipped.itertuples(index=False):
        edges.setdefault((row.scenario, row.loss, row.optimizer), []).append(row.theory_lr)
    return curves, edges


def figure(
    curves: Curves, edges: Edges, order: dict[str, list[str]], steps: int, scenario: str
) -> Figure:
    """Median (line) and, unclipped, IQR (band) of tuning steps against lr for one
    scenario, a panel per loss (rows) and optimizer (columns); the analytic edge dotted.

    A row's panels share one matplotlib axes: x is log10(lr), shifted by one panel width
    per optimizer, with each panel's own frame, title and lr ticks; the steps axis is the
    row's. 168 axes (6 scenarios x 4 losses x 7 optimizers) took 8 s to draw, 24 take 1."""
    losses, optimizers = order["loss"], order["optimizer"]
    lrs = np.concatenate([q.index.to_numpy(np.float64) for q in curves.values()] or [[]])
    low, high = (lrs.min() / 1.5, lrs.max() * 1.5) if len(lrs) else (1e-4, 10.0)
    span, gap = np.log10(high / low), 0.18 * np.log10(high / low)  # a panel, between two
    width = toolkit.WIDTH - 0.75 - 0.1
    fig, axes = toolkit.panels(len(losses), 1, (width, 1.15), (0.75, 0.1, 0.55, 0.45), (0.3, 0.75))
    powers = decades(low, high)
    for ax, loss in zip(axes, losses, strict=True):
        never_axis(ax, steps, "y")
        ax.set(xlim=(0, len(optimizers) * (span + gap) - gap))
        ticks, labels = [], []
        for k, optimizer in enumerate(optimizers):
            left = k * (span + gap)  # this panel's x: left + log10(lr / low)
            ax.axvspan(left + span, left + span + gap, color="#fff", zorder=3)  # the gap
            ax.text(left + span / 2, 1.02, f"{loss} · {optimizer}", ha="center",
                    va="bottom", transform=ax.get_xaxis_transform(), fontsize=8)  # fmt: skip
            ticks += [left + np.log10(10.0**n / low) for n in powers]
            labels += ["10" + str(n).translate(toolkit.POWERS) for n in powers]
            for clip, style in CLIPS.items():
                if (q := curves.get((scenario, loss, optimizer, clip))) is None:
                    continue
                x, color = left + np.log10(q.index.to_numpy(np.float64) / low), CLIP_COLORS[clip]
                if clip == "none":
                    ax.fill_between(x, q[0.25], q[0.75], color=color, alpha=0.15, lw=0)
                ax.plot(x, q[0.5], color=color, ls=style, lw=1.1)
            for theory in edges.get((scenario, loss, optimizer), []):
                ax.axvline(left + np.log10(theory / low), color=EDGE, ls=":", lw=1)
        for k in range(1, len(optimizers)):  # each panel framed: lines on the gaps' edges
            for side in (k * (span + gap) - gap, k * (span + gap)):
                ax.axvline(side, color="#000", lw=0.8, zorder=4)
        ax.set_xticks(ticks, labels)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("steps to target")
    handles = [
        Line2D([], [], color=CLIP_COLORS[c], ls=s, lw=1.5, label=f"clip {c}: median")
        for c, s in CLIPS.items()
    ]
    band = Line2D([], [], color=CLIP_COLORS["none"], lw=6, alpha=0.15, label="clip none: 25-75%")
    edge = Line2D([], [], color=EDGE, ls=":", lw=1, label="analytic stability edge")
    fig.legend(handles=[*handles, band, edge], loc="upper center", ncols=4, frameon=False)
    return fig


def section(
    quantiles: pd.DataFrame, stability: pd.DataFrame, order: dict[str, list[str]], steps: int
) -> str:
    curves, edges = split(quantiles, stability)
    text = (
        "How much the lr matters, from the tuning runs: per scenario, a panel per loss and "
        "optimizer; per lr, the median of steps to target over the tuning seeds, without "
        "clipping (solid, with the 25&ndash;75% range as a band) and with norm clipping "
        "(dashed; value clipping is in the summary table). Dotted: the analytic stability "
        "edge (the stability table's theory_lr); &ldquo;never&rdquo;: not reached in the "
        "budget. Each scenario folds."
    )
    figures_ = [
        markup.details(
            scenario,
            toolkit.svg(
                f"sensitivity-{scenario}",
                lambda s=scenario: figure(curves, edges, order, steps, s),  # type: ignore[misc]
            ),
            shown=True,
        )
        for scenario in order["scenario"]
    ]
    return markup.section("sensitivity", "Learning-rate sensitivity", text, *figures_)
