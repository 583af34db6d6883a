"""The study report's figures, each drawn from analysis's tables (pipeline.study.analysis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.lines import Line2D

from pipeline import figures as toolkit
from pipeline.study.analysis import NEVER
from pipeline.study.configuration import CONFIG
from pipeline.study.report.markup import order_of

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CLIP_COLORS = {"none": "#1f77b4", "norm": "#ff7f0e", "value": "#2ca02c"}


def never_axis(ax: Axes, steps: int, axis: str) -> None:
    """A log axis of steps from 1, and "never" at NEVER x the budget (set before drawing:
    fixed limits spare matplotlib the autoscaling)."""
    ticks = [10.0**k for k in range(int(np.log10(steps)) + 1)] + [NEVER * steps]
    labels = [f"{t:g}" for t in ticks[:-1]] + ["never"]
    limits = (0.8, NEVER * steps * 1.4)
    if axis == "x":
        ax.set(xscale="log", xlim=limits, xticks=ticks, xticklabels=labels)
        ax.axvline(NEVER * steps, color="#bbb", lw=0.6, ls=":")
    else:
        ax.set(yscale="log", ylim=limits, yticks=ticks, yticklabels=labels)
        ax.axhline(NEVER * steps, color="#bbb", lw=0.6, ls=":")
    ax.minorticks_off()


def drawn(values: pd.Series | np.ndarray, steps: int) -> np.ndarray:
    """Steps to target as drawn: +inf on the "never" line, 0 (there at the start) at 1."""
    return np.clip(np.asarray(values, dtype=np.float64), 1.0, NEVER * steps)


def winners(best: pd.DataFrame, traces: pd.DataFrame, tol: dict[str, float], steps: int) -> Figure:
    """Each winner's median distance to the minimiser per step, a panel per scenario, its
    legend (loss: optimizer+clip) under it."""
    report = traces[(traces["part"] == "report") & (traces["lr_kind"] == "tuned")]
    chosen = report[report["step"] > 0].merge(best[list(CONFIG)], on=list(CONFIG))
    median = chosen.groupby([*CONFIG, "step"], sort=False)["error"].median()
    median = median[median > 0]  # an exact hit has no place on a log scale
    scenarios, colors = (
        order_of(best["scenario"]),
        toolkit.colors(order_of(best["loss"])),
    )
    cols = min(3, len(scenarios))
    size, gap = (3.0, 1.9), (0.55, 1.45)  # a row's gap holds the labels and the legend
    fig, axes = toolkit.panels(len(scenarios), cols, size, (0.75, 0.2, 0.3, 1.45), gap)
    low, high = (float(median.min()) / 2, float(median.max()) * 2) if len(median) else (1e-9, 1)
    for ax, scenario in zip(axes, scenarios, strict=True):
        toolkit.log_axis(ax, "x")
        toolkit.log_axis(ax, "y", 5)
        ax.set(xlim=(1, steps), ylim=(low, high))
        ax.set_title(scenario, y=1)  # y given: spares a layout pass
        for r in best[best["scenario"] == scenario].itertuples(index=False):
            if (key := (r.scenario, r.loss, r.optimizer, r.clip)) in median.index:
                curve = median.loc[key]
                label = f"{r.loss}: {r.optimizer}+{r.clip}"
                ax.plot(curve.index, curve.to_numpy(), color=colors[r.loss], lw=1.1, label=label)
        if scenario in tol:
            ax.axhline(tol[scenario], color="#555", ls="--", lw=0.8)
        toolkit.legend_below(ax, 0.5, 2)
    toolkit.labelled(axes, cols, "step", "distance to minimiser")
    return fig


def tuned(summary: pd.DataFrame, order: dict[str, list[str]], steps: int) -> Figure:
    """IQM steps at the tuned lr and its interval, a bar per optimizer x clip, a panel per
    scenario (rows) x loss (columns)."""
    losses, optimizers, clips = order["loss"], order["optimizer"], order["clip"]
    panels = [(s, lo) for s in order["scenario"] for lo in losses]
    size, gap = (1.95, 1.7), (0.72, 0.8)  # every panel names its optimizers and steps
    fig, axes = toolkit.panels(len(panels), len(losses), size, (0.75, 0.15, 0.55, 0.45), gap)
    measures = ["iqm_steps", "iqm_lo", "iqm_hi"]
    at = dict(
        zip(
            summary[list(CONFIG)].itertuples(index=False, name=None),
            summary[measures].to_numpy(np.float64),
            strict=True,
        )
    )
    y0, missing = np.arange(len(optimizers), dtype=np.float64), np.full(3, np.nan)
    for ax, (scenario, loss) in zip(axes, panels, strict=True):
        never_axis(ax, steps, "x")
        ax.set(yticks=y0, yticklabels=optimizers, ylim=(len(optimizers) - 0.5, -0.5))
        for k in range(1, len(optimizers), 2):
            ax.axhspan(k - 0.5, k + 0.5, color="#f0f0f0", lw=0, zorder=0)
        ax.set_title(f"{scenario} · {loss}", y=1)
        for k, clip in enumerate(clips):
            y, color = y0 + (k - (len(clips) - 1) / 2) * 0.26, CLIP_COLORS.get(clip, "#000")
            part = np.array([at.get((scenario, loss, o, clip), missing) for o in optimizers])
            iqm, lo, hi = drawn(part, steps).T
            never = np.isinf(part[:, 0])
            ax.hlines(y, lo, hi, color=color, lw=1.1)
            ax.plot(iqm[~never], y[~never], "o", ms=2.6, color=color)
            ax.plot(iqm[never], y[never], ">", ms=4, color=color)
    toolkit.labelled(axes, len(losses), "IQM steps to target", "")
    handles = [
        Line2D([], [], color=CLIP_COLORS.get(c, "#000"), marker="o", ms=3, label=f"clip {c}")
        for c in clips
    ]
    handles.append(Line2D([], [], color="#000", marker=">", lw=0, label="IQM: never reached"))
    fig.legend(handles=handles, loc="upper center", ncols=len(handles), frameon=False)
    return fig


def robustness(robust: pd.DataFrame, scenarios: list[str], losses: list[str]) -> Figure:
    """Per scenario and loss: the minimiser's and the trained winner's distance to the
    generating line (log y, one scale for all)."""
    size = ((toolkit.WIDTH - 0.9 - 0.3 * (len(scenarios) - 1)) / max(len(scenarios), 1), 2.0)
    fig, axes = toolkit.panels(len(scenarios), len(scenarios), size, (0.75, 0.15, 0.6, 0.75))
    shown = robust[robust["scenario"].isin(scenarios)]
    values = shown[["minimiser_error", "trained_error"]].to_numpy(np.float64)
    positive = values[values > 0]
    limits = (positive.min() / 2, positive.max() * 2) if positive.size else (1e-3, 1.0)
    for ax, scenario in zip(axes, scenarios, strict=True):
        part = shown[shown["scenario"] == scenario].set_index("loss")
        part = part.reindex([lo for lo in losses if lo in part.index])
        x = np.arange(len(part))
        toolkit.log_axis(ax, "y")
        ax.set(ylim=limits, xlim=(-0.6, len(part) - 0.4))
        for offset, column, color, label in (
            (-0.2, "minimiser_error", "#999", "the loss's minimiser"),
            (0.2, "trained_error", "#1f77b4", "the tuned winner, trained"),
        ):
            value = part[column].to_numpy(np.float64)
            ax.bar(x + offset, np.where(value > 0, value, np.nan), 0.4, color=color, label=label)
        names = [
            f"{lo}\n{r.optimizer}+{r.clip}"
            for lo, r in zip(part.index, part.itertuples(), strict=True)
        ]
        ax.set_xticks(x, names)
        ax.set_title(scenario, y=1)
    toolkit.labelled(axes, len(axes), "", "distance to the line")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncols=2, frameon=False)  # above the panels
    return fig


def improvement(improvement: pd.DataFrame, clips: list[str], names: list[str]) -> Figure:
    """P(row needs fewer steps than column), an annotated heatmap per clip mode."""
    fig, axes = toolkit.panels(
        len(clips), len(clips), (2.9, 2.5), (0.8, 0.2, 0.35, 0.8), (0.8, 0.4)
    )
    for ax, clip in zip(axes, clips, strict=True):
        part = improvement[improvement["clip"] == clip]
        table = part.pivot(index="optimizer", columns="versus", values="probability")
        value = table.reindex(index=names, columns=names).to_numpy(np.float64)
        toolkit.heatmap(ax, value, value, names, 0, 1, "RdBu")
        ax.set_xticks(np.arange(len(names)) + 0.5, names, rotation=90)
        ax.set_title(f"clip {clip}", y=1)
    toolkit.labelled(axes, len(axes), "", "")
    return fig


def profiles(
    curves: pd.DataFrame, scores: pd.DataFrame, clips: list[str], names: list[str]
) -> Figure:
    """rho(tau) per optimizer, a panel per clip mode; the legend under each gives the
    optimizers' scores."""
    gap, below = (0.55, 0.4), 0.2 + 0.17 * -(-len(names) // 2)  # the legend's rows
    size = ((toolkit.WIDTH - 0.9 - gap[0] * (len(clips) - 1)) / max(len(clips), 1), 2.1)
    fig, axes = toolkit.panels(len(clips), len(clips), size, (0.7, 0.2, 0.35, 0.55 + below), gap)
    colors, score = toolkit.colors(names), scores.set_index(["clip", "optimizer"])["score"]
    for ax, clip in zip(axes, clips, strict=True):
        ax.set(xlim=(1, 4), ylim=(0, 1.02))
        ax.set_title(f"clip {clip}", y=1)
        for name in names:
            c = curves[(curves["clip"] == clip) & (curves["optimizer"] == name)]
            label = f"{name} ({score.get((clip, name), np.nan):.2f})"
            ax.plot(c["tau"], c["rho"], drawstyle="steps-post", color=colors[name], label=label)
        toolkit.legend_below(ax, 0.45, 2, title="optimizer (score)", title_fontsize=7)
    toolkit.labelled(
        axes, len(axes), r"$\tau$ (steps / best steps)", r"$\rho(\tau)$: share of workloads"
    )
    return fig
