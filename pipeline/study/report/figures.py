"""The study report's figures, each drawn from analysis's tables (pipeline.study.analysis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
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
SENSITIVITY_CLIPS = {"none": "-", "norm": "--"}  # value left out: a third style was a blur


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
    """Each winner's median distance to the minimiser per step, a panel per scenario."""
    report = traces[(traces["part"] == "report") & (traces["lr_kind"] == "tuned")]
    chosen = report[report["step"] > 0].merge(best[list(CONFIG)], on=list(CONFIG))
    median = chosen.groupby([*CONFIG, "step"], sort=False)["error"].median()
    median = median[median > 0]  # an exact hit has no place on a log scale
    scenarios, colors = (
        order_of(best["scenario"]),
        toolkit.colors(order_of(best["loss"])),
    )
    cols = min(3, len(scenarios))
    fig, axes = toolkit.panels(len(scenarios), cols, (2.9, 1.9), (0.7, 0.15, 0.3, 0.45))
    low, high = (float(median.min()) / 2, float(median.max()) * 2) if len(median) else (1e-9, 1)
    for ax, scenario in zip(axes, scenarios, strict=True):
        toolkit.log_axis(ax, "x")
        toolkit.log_axis(ax, "y")
        ax.set(xlim=(1, steps), ylim=(low, high))
        ax.set_title(scenario, y=1)  # y given: spares a layout pass
        for r in best[best["scenario"] == scenario].itertuples(index=False):
            if (key := (r.scenario, r.loss, r.optimizer, r.clip)) in median.index:
                curve = median.loc[key]
                label = f"{r.loss}: {r.optimizer}+{r.clip}"
                ax.plot(curve.index, curve.to_numpy(), color=colors[r.loss], lw=1.1, label=label)
        if scenario in tol:
            ax.axhline(tol[scenario], color="#555", ls="--", lw=0.8)
        ax.legend(loc="lower left", fontsize=6, frameon=False)
    toolkit.outer(axes, cols, "step", "distance to minimiser")
    return fig


def tuned(summary: pd.DataFrame, order: dict[str, list[str]], steps: int) -> Figure:
    """IQM steps at the tuned lr and its interval, a bar per optimizer x clip, a panel per
    scenario (rows) x loss (columns)."""
    losses, optimizers, clips = order["loss"], order["optimizer"], order["clip"]
    panels = [(s, lo) for s in order["scenario"] for lo in losses]
    fig, axes = toolkit.panels(len(panels), len(losses), (2.35, 1.7), (0.75, 0.15, 0.55, 0.45))
    measures = ["iqm_steps", "iqm_lo", "iqm_hi"]
    at = dict(
        zip(
            summary[list(CONFIG)].itertuples(index=False, name=None),
            summary[measures].to_numpy(np.float64),
            strict=True,
        )
    )
    y0, missing = np.arange(len(optimizers), dtype=np.float64), np.full(3, np.nan)
    for i, (ax, (scenario, loss)) in enumerate(zip(axes, panels, strict=True)):
        never_axis(ax, steps, "x")
        first = i % len(losses) == 0  # inner y ticks took a third of the time: bands instead
        ax.set(
            yticks=y0 if first else [],
            yticklabels=optimizers if first else [],
            ylim=(len(optimizers) - 0.5, -0.5),
        )
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
    toolkit.outer(axes, len(losses), "IQM steps to target", "")
    handles = [
        Line2D([], [], color=CLIP_COLORS.get(c, "#000"), marker="o", ms=3, label=f"clip {c}")
        for c in clips
    ]
    handles.append(Line2D([], [], color="#000", marker=">", lw=0, label="IQM: never reached"))
    fig.legend(handles=handles, loc="upper center", ncols=len(handles), frameon=False)
    return fig


def sensitivity(
    table: pd.DataFrame,
    edges: pd.DataFrame,
    order: dict[str, list[str]],
    steps: int,
) -> Figure:
    """Median (line) and IQR (band) of tuning steps against lr, a line per optimizer and
    clip none/norm, the analytic edges as dotted verticals."""
    losses, optimizers, colors = (
        order["loss"],
        order["optimizer"],
        toolkit.colors(order["optimizer"]),
    )
    panels = [(s, lo) for s in order["scenario"] for lo in losses]
    fig, axes = toolkit.panels(len(panels), len(losses), (2.35, 1.75), (0.6, 0.15, 0.75, 0.45))
    quantiles = {
        key: part.droplevel(list(CONFIG)) for key, part in table.groupby(level=list(CONFIG))
    }
    lrs = np.concatenate([q.index.to_numpy(np.float64) for q in quantiles.values()] or [[1.0]])
    for ax, (scenario, loss) in zip(axes, panels, strict=True):
        never_axis(ax, steps, "y")
        toolkit.log_axis(ax, "x")
        ax.set_xlim(lrs.min() / 1.5, lrs.max() * 1.5)
        ax.set_title(f"{scenario} · {loss}", y=1)
        lines: list[tuple[np.ndarray, str, str]] = []  # one collection each: 14 artists cost
        bands: list[tuple[np.ndarray, str]] = []  # more than drawing their points
        for o in optimizers:
            for clip, style in SENSITIVITY_CLIPS.items():
                if (q := quantiles.get((scenario, loss, o, clip))) is not None:
                    lr = q.index.to_numpy(np.float64)
                    lines.append((np.column_stack([lr, q[0.5]]), colors[o], style))
                    if clip == "none":  # one band per optimizer: two were a blur
                        band = np.r_[np.c_[lr, q[0.25]], np.c_[lr, q[0.75]][::-1]]
                        bands.append((band, colors[o]))
        if bands:
            ax.add_collection(
                PolyCollection(
                    [b for b, _ in bands], facecolors=[c for _, c in bands], alpha=0.1, lw=0
                ),
                autolim=False,
            )
        if lines:
            line, color, style = zip(*lines, strict=True)
            ax.add_collection(
                LineCollection(line, colors=color, linestyles=style, lw=0.9), autolim=False
            )
        here = edges[(edges["scenario"] == scenario) & (edges["loss"] == loss)]
        ax.vlines(
            here["theory_lr"],
            0.8,
            NEVER * steps * 1.4,
            ls=":",
            lw=1,
            colors=[colors.get(o, "#000") for o in here["optimizer"]],
        )
    toolkit.outer(axes, len(losses), "learning rate", "steps to target")
    handles = [Line2D([], [], color=colors[o], lw=1.5, label=o) for o in optimizers]
    handles += [
        Line2D([], [], color="#000", ls=s, lw=0.9, label=f"clip {c}")
        for c, s in SENSITIVITY_CLIPS.items()
    ]
    handles.append(Line2D([], [], color="#000", ls=":", lw=1, label="analytic edge"))
    fig.legend(handles=handles, loc="upper center", ncols=(len(handles) + 1) // 2, frameon=False)
    return fig


def clipping(ratios: pd.DataFrame, order: dict[str, list[str]]) -> Figure:
    """A heatmap per scenario: optimizers (rows) x loss and clip mode (columns), shaded by
    log2 of the ratio of IQM steps to no clipping."""
    scenarios, optimizers = order["scenario"], order["optimizer"]
    columns = [(loss, c) for loss in order["loss"] for c in ratios.columns]
    size = (max(0.34 * len(columns), 1.2), max(0.22 * len(optimizers), 1.2))
    cols = min(3, len(scenarios))
    fig, axes = toolkit.panels(len(scenarios), cols, size, (0.75, 0.75, 0.3, 0.75))
    at = ratios.to_dict("index")
    for ax, scenario in zip(axes, scenarios, strict=True):
        value = np.array(
            [
                [at.get((scenario, loss, o), {}).get(c, np.nan) for loss, c in columns]
                for o in optimizers
            ]
        )
        with np.errstate(divide="ignore"):
            toolkit.heatmap(ax, value, np.clip(np.log2(value), -3, 3), optimizers, -3, 3, "RdBu_r")
        for k in range(len(ratios.columns), len(columns), len(ratios.columns)):
            ax.axvline(k, color="#fff", lw=2)
        ax.set_xticks(
            np.arange(len(columns)) + 0.5,
            [f"{lo} {c}" for lo, c in columns],
            rotation=90,
            fontsize=6,
        )
        ax.set_title(scenario, y=1)
    toolkit.outer(axes, cols, "", "")
    width = fig.get_figwidth()
    box = (1 - 0.55 / width, 0.2, 0.1 / width, 0.6)  # in the right margin
    bar = fig.colorbar(axes[0].collections[0], cax=fig.add_axes(box))
    if bar.solids is not None:  # vector, as the rest: no embedded PNG
        bar.solids.set_rasterized(False)
    bar.set_ticks(range(-3, 4), labels=["⅛", "¼", "½", "1", "2", "4", "8"])
    bar.set_label("clipped / unclipped")
    return fig


def robustness(robust: pd.DataFrame, scenarios: list[str], losses: list[str]) -> Figure:
    """Per scenario and loss: the minimiser's and the trained winner's distance to the
    generating line (log y, one scale for all)."""
    fig, axes = toolkit.panels(len(scenarios), len(scenarios), (2.7, 2.0), (0.7, 0.15, 0.45, 0.6))
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
        ax.set_xticks(x, names, fontsize=6)
        ax.set_title(scenario, y=1)
    toolkit.outer(axes, len(axes), "", "distance to the line")
    axes[0].legend(loc="upper left", fontsize=6, frameon=False)
    return fig


def improvement(improvement: pd.DataFrame, clips: list[str], names: list[str]) -> Figure:
    """P(row needs fewer steps than column), an annotated heatmap per clip mode."""
    fig, axes = toolkit.panels(len(clips), len(clips), (2.5, 2.5), (0.75, 0.2, 0.35, 0.75))
    for ax, clip in zip(axes, clips, strict=True):
        part = improvement[improvement["clip"] == clip]
        table = part.pivot(index="optimizer", columns="versus", values="probability")
        value = table.reindex(index=names, columns=names).to_numpy(np.float64)
        toolkit.heatmap(ax, value, value, names, 0, 1, "RdBu")
        ax.set_xticks(np.arange(len(names)) + 0.5, names, rotation=90)
        ax.set_title(f"clip {clip}", y=1)
    toolkit.outer(axes, len(axes), "", "")
    return fig


def profiles(
    curves: pd.DataFrame, scores: pd.DataFrame, clips: list[str], names: list[str]
) -> Figure:
    """rho(tau) per optimizer, a panel per clip mode; the legend gives each score."""
    fig, axes = toolkit.panels(len(clips), len(clips), (2.8, 2.1), (0.6, 0.15, 0.35, 0.5))
    colors, score = toolkit.colors(names), scores.set_index(["clip", "optimizer"])["score"]
    for ax, clip in zip(axes, clips, strict=True):
        ax.set(xlim=(1, 4), ylim=(0, 1.02))
        ax.set_title(f"clip {clip}", y=1)
        for name in names:
            c = curves[(curves["clip"] == clip) & (curves["optimizer"] == name)]
            label = f"{name} ({score.get((clip, name), np.nan):.2f})"
            ax.plot(c["tau"], c["rho"], drawstyle="steps-post", color=colors[name], label=label)
        ax.legend(loc="lower right", fontsize=6, title="optimizer (score)", title_fontsize=6)
    toolkit.outer(
        axes, len(axes), r"$\tau$ (steps / best steps)", r"$\rho(\tau)$: share of workloads"
    )
    return fig
