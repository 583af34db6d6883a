"""The study's report: one self-contained HTML page that opens offline.

CSS is inline and every figure an inline SVG drawn on a bare matplotlib `Figure` (no
pyplot; rcParams set only inside `rc_context`); nothing on the page names a URL. Every
number comes from the tables of pipeline.study.analysis or from the cells and traces they were
computed from. Equal inputs give equal bytes: the SVGs carry no date, and their ids are
hashed with a fixed salt, one per figure, so no two figures on the page share an id.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D

from pipeline import params
from pipeline.study import analysis, protocol, stats
from pipeline.study.configuration import CONFIG

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip  # matplotlib's tab10, per optimizer
CLIP_COLORS = {"none": "#1f77b4", "norm": "#ff7f0e", "value": "#2ca02c"}
SENSITIVITY_CLIPS = {"none": "-", "norm": "--"}  # value left out: a third style was a blur
NEVER = 2.0  # "never reached" is drawn at this multiple of the step budget
CLASS_COLUMNS = ("config", "tuned_lr", "iqm_steps", "iqm_lo", "iqm_hi", "success_rate",
                 "stayed_rate", "median_accuracy", "median_angle_deg")  # fmt: skip  # shown
REFERENCE = "noisy"  # the Gaussian-noise scenario the outlier scenarios shift points of
DASH = "\u2013"  # a missing value
SUPERSCRIPT = "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
POWERS = str.maketrans("-0123456789", SUPERSCRIPT)  # log tick labels as plain text
RC: dict[
    RcKeyType, object
] = {  # 24-panel figures shrink to the page: small type, kept as text (smaller and faster)
    "svg.fonttype": "none",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
}
CSS = """body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;
color:#222}h2{border-bottom:1px solid #ccc;margin-top:2em}nav a{margin-right:.8em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}th,td{border:1px solid #ddd;
padding:2px 6px;text-align:right}td{white-space:nowrap}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.scroll{overflow-x:auto}figure{margin:.8em 0}
svg{max-width:100%;height:auto}summary{cursor:pointer}"""


# --- numbers and HTML ------------------------------------------------------------------
def _order(values: Iterable[object], preferred: Sequence[str] = ()) -> list[str]:
    """The distinct values, those in `preferred` first and in its order, then the rest."""
    seen = [str(v) for v in dict.fromkeys(values)]
    return [v for v in preferred if v in seen] + [v for v in seen if v not in preferred]


def _num(value: object, digits: int = 4) -> str:
    """A table cell: `digits` significant digits, "∞" for never, yes/no for flags."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return DASH if np.isnan(value) else "∞" if np.isinf(value) else f"{value:.{digits}g}"
    return str(value)


def _pct(share: float) -> str:
    return DASH if np.isnan(share) else f"{100 * share:.0f}%"


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(_num(v, digits))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f'<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>'


def _section(id_: str, title: str, text: str, *body: str) -> str:
    """A section: its title, what it shows and how to read it, then tables and figures."""
    return f'<section id="{id_}"><h2>{escape(title)}</h2><p>{text}</p>{"".join(body)}</section>'


def _details(label: str, body: str) -> str:
    return f"<details><summary>{escape(label)}</summary>{body}</details>"


# --- figures ---------------------------------------------------------------------------
def _svg(salt: str, draw: Callable[[], Figure]) -> str:
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


def _panels(
    n: int, cols: int, size: tuple[float, float], margin: tuple[float, float, float, float]
) -> tuple[Figure, list[Axes]]:
    """n axes of `size` inches, `cols` a row, margin (left, right, top, bottom) in inches.
    Fixed and unshared: constrained layout and 24 shared axes each cost seconds."""
    from matplotlib.figure import Figure

    rows, (left, right, top, bottom), gap = -(-n // cols), margin, (0.3, 0.42)
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


def _outer(axes: list[Axes], cols: int, xlabel: str, ylabel: str) -> None:
    """Tick labels and axis labels on the outer panels only."""
    for i, ax in enumerate(axes):
        bottom, left = i + cols >= len(axes), i % cols == 0
        ax.tick_params(labelbottom=bottom, labelleft=left)
        ax.set_xlabel(xlabel if bottom else "")
        ax.set_ylabel(ylabel if left else "")


def _never_axis(ax: Axes, steps: int, axis: str) -> None:
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


def _log(ax: Axes, axis: str) -> None:
    """A log axis labelled 10\u207b\u00b9 in plain text (mathtext labels cost more than the
    panel), no minor ticks."""
    from matplotlib import ticker

    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(ticker.LogLocator(numticks=7))
    power = ticker.FuncFormatter(lambda v, _: "10" + f"{np.log10(v):.0f}".translate(POWERS))
    target.set_major_formatter(power)
    target.set_minor_locator(ticker.NullLocator())


def _drawn(values: pd.Series | np.ndarray, steps: int) -> np.ndarray:
    """Steps to target as drawn: +inf on the "never" line, 0 (there at the start) at 1."""
    return np.clip(np.asarray(values, dtype=np.float64), 1.0, NEVER * steps)


def _colors(names: Sequence[str]) -> dict[str, str]:
    return {name: COLORS[i % len(COLORS)] for i, name in enumerate(names)}


def _figure_winners(
    best: pd.DataFrame, traces: pd.DataFrame, tol: dict[str, float], steps: int
) -> Figure:
    """Each winner's median distance to the minimiser per step, a panel per scenario."""
    report = traces[(traces["part"] == "report") & (traces["lr_kind"] == "tuned")]
    chosen = report[report["step"] > 0].merge(best[list(CONFIG)], on=list(CONFIG))
    median = chosen.groupby([*CONFIG, "step"], sort=False)["error"].median()
    median = median[median > 0]  # an exact hit has no place on a log scale
    scenarios, colors = _order(best["scenario"]), _colors(_order(best["loss"]))
    cols = min(3, len(scenarios))
    fig, axes = _panels(len(scenarios), cols, (2.9, 1.9), (0.7, 0.15, 0.3, 0.45))
    low, high = (float(median.min()) / 2, float(median.max()) * 2) if len(median) else (1e-9, 1)
    for ax, scenario in zip(axes, scenarios, strict=True):
        _log(ax, "x")
        _log(ax, "y")
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
    _outer(axes, cols, "step", "distance to minimiser")
    return fig


def _figure_tuned(summary: pd.DataFrame, order: dict[str, list[str]], steps: int) -> Figure:
    """IQM steps at the tuned lr and its interval, a bar per optimizer x clip, a panel per
    scenario (rows) x loss (columns)."""
    losses, optimizers, clips = order["loss"], order["optimizer"], order["clip"]
    panels = [(s, lo) for s in order["scenario"] for lo in losses]
    fig, axes = _panels(len(panels), len(losses), (2.35, 1.7), (0.75, 0.15, 0.55, 0.45))
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
        _never_axis(ax, steps, "x")
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
            iqm, lo, hi = _drawn(part, steps).T
            never = np.isinf(part[:, 0])
            ax.hlines(y, lo, hi, color=color, lw=1.1)
            ax.plot(iqm[~never], y[~never], "o", ms=2.6, color=color)
            ax.plot(iqm[never], y[never], ">", ms=4, color=color)
    _outer(axes, len(losses), "IQM steps to target", "")
    handles = [
        Line2D([], [], color=CLIP_COLORS.get(c, "#000"), marker="o", ms=3, label=f"clip {c}")
        for c in clips
    ]
    handles.append(Line2D([], [], color="#000", marker=">", lw=0, label="IQM: never reached"))
    fig.legend(handles=handles, loc="upper center", ncols=len(handles), frameon=False)
    return fig


def _quantiles(cells: pd.DataFrame, steps: int) -> dict[tuple[str, ...], pd.DataFrame]:
    """Per configuration: the 25, 50 and 75% quantiles of steps over tuning seeds, per lr."""
    tune = cells[cells["part"] == "tune"]
    drawn = _drawn(stats.steps_or_inf(tune["steps_to_target"]), steps)
    by = tune.assign(drawn=drawn).groupby([*CONFIG, "lr"], sort=True)["drawn"]
    q = by.quantile([0.25, 0.5, 0.75]).unstack()
    return {key: part.droplevel(list(CONFIG)) for key, part in q.groupby(level=list(CONFIG))}


def _figure_sensitivity(
    quantiles: dict[tuple[str, ...], pd.DataFrame],
    edges: pd.DataFrame,
    order: dict[str, list[str]],
    steps: int,
) -> Figure:
    """Median (line) and IQR (band) of tuning steps against lr, a line per optimizer and
    clip none/norm, the analytic edges as dotted verticals."""
    losses, optimizers, colors = order["loss"], order["optimizer"], _colors(order["optimizer"])
    panels = [(s, lo) for s in order["scenario"] for lo in losses]
    fig, axes = _panels(len(panels), len(losses), (2.35, 1.75), (0.6, 0.15, 0.75, 0.45))
    lrs = np.concatenate([q.index.to_numpy(np.float64) for q in quantiles.values()] or [[1.0]])
    for ax, (scenario, loss) in zip(axes, panels, strict=True):
        _never_axis(ax, steps, "y")
        _log(ax, "x")
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
    _outer(axes, len(losses), "learning rate", "steps to target")
    handles = [Line2D([], [], color=colors[o], lw=1.5, label=o) for o in optimizers]
    handles += [
        Line2D([], [], color="#000", ls=s, lw=0.9, label=f"clip {c}")
        for c, s in SENSITIVITY_CLIPS.items()
    ]
    handles.append(Line2D([], [], color="#000", ls=":", lw=1, label="analytic edge"))
    fig.legend(handles=handles, loc="upper center", ncols=(len(handles) + 1) // 2, frameon=False)
    return fig


def _clip_ratios(summary: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, loss and optimizer (index): IQM steps with each clip mode over IQM
    steps without (columns). 0: only the clipped runs reached the target; inf: only the
    unclipped ones; NaN: neither."""
    iqm = summary.set_index(list(CONFIG))["iqm_steps"].unstack("clip")
    with np.errstate(divide="ignore", invalid="ignore"):
        return iqm.drop(columns="none").div(iqm["none"], axis=0)


def _ratio_label(r: float) -> str:
    return DASH if np.isnan(r) else "∞" if np.isinf(r) else "0" if r == 0 else f"{r:.2g}"


def _heatmap(
    ax: Axes,
    value: np.ndarray,
    shade: np.ndarray,
    labels: list[str],
    vmin: float,
    vmax: float,
    cmap: str,
) -> None:
    """value annotated over its shade (NaN grey), a row per label; white type on the ends."""
    colors = matplotlib.colormaps[cmap].with_extremes(bad="#e4e4e4")
    ax.pcolormesh(np.ma.masked_invalid(shade), cmap=colors, vmin=vmin, vmax=vmax)
    middle, reach = (vmin + vmax) / 2, (vmax - vmin) / 2
    for (i, j), v in np.ndenumerate(value):
        dark = np.isfinite(shade[i, j]) and abs(shade[i, j] - middle) > 0.6 * reach
        kind = {"color": "#fff" if dark else "#000", "fontsize": 5.5}
        ax.text(j + 0.5, i + 0.5, _ratio_label(v), ha="center", va="center", fontdict=kind)
    ax.set(yticks=np.arange(len(labels)) + 0.5, yticklabels=labels, ylim=(len(labels), 0))


def _figure_clipping(ratios: pd.DataFrame, order: dict[str, list[str]]) -> Figure:
    """A heatmap per scenario: optimizers (rows) x loss and clip mode (columns), shaded by
    log2 of the ratio of IQM steps to no clipping."""
    scenarios, optimizers = order["scenario"], order["optimizer"]
    columns = [(loss, c) for loss in order["loss"] for c in ratios.columns]
    size = (max(0.34 * len(columns), 1.2), max(0.22 * len(optimizers), 1.2))
    cols = min(3, len(scenarios))
    fig, axes = _panels(len(scenarios), cols, size, (0.75, 0.75, 0.3, 0.75))
    at = ratios.to_dict("index")
    for ax, scenario in zip(axes, scenarios, strict=True):
        value = np.array(
            [
                [at.get((scenario, loss, o), {}).get(c, np.nan) for loss, c in columns]
                for o in optimizers
            ]
        )
        with np.errstate(divide="ignore"):
            _heatmap(ax, value, np.clip(np.log2(value), -3, 3), optimizers, -3, 3, "RdBu_r")
        for k in range(len(ratios.columns), len(columns), len(ratios.columns)):
            ax.axvline(k, color="#fff", lw=2)
        ax.set_xticks(
            np.arange(len(columns)) + 0.5,
            [f"{lo} {c}" for lo, c in columns],
            rotation=90,
            fontsize=6,
        )
        ax.set_title(scenario, y=1)
    _outer(axes, cols, "", "")
    width = fig.get_figwidth()
    box = (1 - 0.55 / width, 0.2, 0.1 / width, 0.6)  # in the right margin
    bar = fig.colorbar(axes[0].collections[0], cax=fig.add_axes(box))
    if bar.solids is not None:  # vector, as the rest: no embedded PNG
        bar.solids.set_rasterized(False)
    bar.set_ticks(range(-3, 4), labels=["⅛", "¼", "½", "1", "2", "4", "8"])
    bar.set_label("clipped / unclipped")
    return fig


def _figure_robustness(robust: pd.DataFrame, scenarios: list[str], losses: list[str]) -> Figure:
    """Per scenario and loss: the minimiser's and the trained winner's distance to the
    generating line (log y, one scale for all)."""
    fig, axes = _panels(len(scenarios), len(scenarios), (2.7, 2.0), (0.7, 0.15, 0.45, 0.6))
    shown = robust[robust["scenario"].isin(scenarios)]
    values = shown[["minimiser_error", "trained_error"]].to_numpy(np.float64)
    positive = values[values > 0]
    limits = (positive.min() / 2, positive.max() * 2) if positive.size else (1e-3, 1.0)
    for ax, scenario in zip(axes, scenarios, strict=True):
        part = shown[shown["scenario"] == scenario].set_index("loss")
        part = part.reindex([lo for lo in losses if lo in part.index])
        x = np.arange(len(part))
        _log(ax, "y")
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
    _outer(axes, len(axes), "", "distance to the line")
    axes[0].legend(loc="upper left", fontsize=6, frameon=False)
    return fig


def _figure_improvement(improvement: pd.DataFrame, clips: list[str], names: list[str]) -> Figure:
    """P(row needs fewer steps than column), an annotated heatmap per clip mode."""
    fig, axes = _panels(len(clips), len(clips), (2.5, 2.5), (0.75, 0.2, 0.35, 0.75))
    for ax, clip in zip(axes, clips, strict=True):
        part = improvement[improvement["clip"] == clip]
        table = part.pivot(index="optimizer", columns="versus", values="probability")
        value = table.reindex(index=names, columns=names).to_numpy(np.float64)
        _heatmap(ax, value, value, names, 0, 1, "RdBu")
        ax.set_xticks(np.arange(len(names)) + 0.5, names, rotation=90)
        ax.set_title(f"clip {clip}", y=1)
    _outer(axes, len(axes), "", "")
    return fig


def _figure_profiles(
    curves: pd.DataFrame, scores: pd.DataFrame, clips: list[str], names: list[str]
) -> Figure:
    """rho(tau) per optimizer, a panel per clip mode; the legend gives each score."""
    fig, axes = _panels(len(clips), len(clips), (2.8, 2.1), (0.6, 0.15, 0.35, 0.5))
    colors, score = _colors(names), scores.set_index(["clip", "optimizer"])["score"]
    for ax, clip in zip(axes, clips, strict=True):
        ax.set(xlim=(1, 4), ylim=(0, 1.02))
        ax.set_title(f"clip {clip}", y=1)
        for name in names:
            c = curves[(curves["clip"] == clip) & (curves["optimizer"] == name)]
            label = f"{name} ({score.get((clip, name), np.nan):.2f})"
            ax.plot(c["tau"], c["rho"], drawstyle="steps-post", color=colors[name], label=label)
        ax.legend(loc="lower right", fontsize=6, title="optimizer (score)", title_fontsize=6)
    _outer(axes, len(axes), r"$\tau$ (steps / best steps)", r"$\rho(\tau)$: share of workloads")
    return fig


# --- sections --------------------------------------------------------------------------
def _protocol(
    p: params.StudyRecord, b: params.Bootstrap, summary: pd.DataFrame, stability: pd.DataFrame
) -> str:
    import pandas as pd

    s, listed = p.study, ", ".join
    shot = summary.drop_duplicates("optimizer")
    default = listed(f"{r.optimizer} {r.default_lr:g}" for r in shot.itertuples())
    edge = listed(_order(stability["optimizer"], s.optimizers)) if len(stability) else "none"
    text = (
        "Each configuration (scenario &times; loss &times; optimizer &times; clip) trains the "
        f"linear model y = w x + b for {s.steps} steps in {s.dtype}. <b>Tuning</b>: every lr "
        f"of a log grid from {s.lr.low:g} to {s.lr.high:g} at {s.lr.per_decade} points a "
        f"decade, the library's default ({default}) and, for {edge}, "
        f"{listed(f'{f:g}' for f in s.lr.near_edge)} &times; the analytic MSE stability edge, "
        f"on tuning seeds {listed(map(str, s.seeds.tune))}. The tuned lr has the lowest "
        "median steps-to-target over the tuning seeds (ties: the smaller lr; never reached "
        "at any lr: the grid lr nearest the default). <b>Reporting</b>: the tuned lr, and "
        f"the default once more, on fresh seeds {listed(map(str, s.seeds.report))}. "
        "<b>Measure</b>: the steps until the distance of (w, b) to the minimiser of the "
        "configuration's own loss on that seed's data is at most the scenario's tol (below); "
        "never within the budget counts as +&infin;, drawn and written &ldquo;never&rdquo;. "
        "<b>Statistics</b>: over the reporting seeds, the interquartile mean (IQM: the mean "
        "once a quarter of the runs is dropped at each end, as rliable; &infin; when more "
        "than a quarter never reached the target), the median and the success rate, with "
        f"{protocol.LEVEL:.0%} percentile bootstrap intervals ({b.reps} resamples, seed "
        f"{b.seed})."
    )
    rows = []
    for name in s.scenarios:
        scenario = p.scenarios[name].model_dump()
        rest = {k: v for k, v in scenario.items() if k not in ("kind", "tol", "batch_size")}
        batch, settings = (
            str(scenario["batch_size"] or "full"),
            listed(f"{k} {v:g}" for k, v in rest.items()),
        )
        rows.append([name, scenario["kind"], scenario["tol"], batch, settings])
    scenarios = pd.DataFrame(rows, columns=["scenario", "kind", "tol", "batch", "settings"])
    return _section("protocol", "Protocol", text, _table(scenarios))


def _winners(
    summary: pd.DataFrame, traces: pd.DataFrame, p: params.StudyRecord, order: dict[str, list[str]]
) -> str:
    import pandas as pd

    rank = {k: {v: i for i, v in enumerate(order[k])} for k in ("scenario", "loss")}
    best = analysis.winners(summary).sort_values(
        ["scenario", "loss"], key=lambda column: column.map(rank[column.name]), kind="stable"
    )
    frame = pd.DataFrame(
        {
            "scenario": best["scenario"],
            "loss": best["loss"],
            "config": best["optimizer"] + "+" + best["clip"],
            "tuned lr": best["tuned_lr"],
            f"IQM steps [{protocol.LEVEL:.0%} CI]": [
                f"{_num(r.iqm_steps)} [{_num(r.iqm_lo)}, {_num(r.iqm_hi)}]"
                for r in best.itertuples()
            ],
            "median steps": best["median_steps"],
            "success rate": [_pct(v) for v in best["success_rate"]],
            "stayed rate": [_pct(v) for v in best["stayed_rate"]],
        }
    )
    text = (
        "Per scenario and loss, the configuration (optimizer+clip) with the lowest IQM of "
        "steps to target at its tuned lr on the reporting seeds (ties: the higher success "
        "rate). Steps to target count until the first step within tol; the stayed rate is "
        "the share of seeds still within tol at the last step: a winner with a low one "
        "gets there fast and leaves again (a large lr that oscillates, or minibatch noise). "
        "The figure follows each winner: its median distance to the minimiser over "
        "the reporting seeds, per step (dashed: the scenario's tol)."
    )
    tol = {name: p.scenarios[name].tol for name in p.scenarios}
    figure = _svg("winners", lambda: _figure_winners(best, traces, tol, p.study.steps))
    return _section("winners", "Tuned winners", text, _table(frame), figure if len(traces) else "")


def _tuned(summary: pd.DataFrame, order: dict[str, list[str]], steps: int) -> str:
    iqm = summary["iqm_steps"].to_numpy(np.float64)
    text = (
        "Each optimizer &times; clip mode at its own tuned lr: the dot is the IQM of steps to "
        f"target over the reporting seeds, the bar its {protocol.LEVEL:.0%} interval (log "
        "scale); a triangle "
        "on the &ldquo;never&rdquo; line: the IQM is infinite; a bar reaching it: the "
        f"interval is open. {int((summary['success_rate'] == 1).sum())} of {len(summary)} "
        "configurations reached the target on every reporting seed; "
        f"{int(np.isinf(iqm).sum())} have an infinite IQM."
    )
    figure = _svg("tuned", lambda: _figure_tuned(summary, order, steps))
    table = _details("Every configuration (the summary table)", _table(summary))
    return _section("tuned", "Tuned comparison", text, figure, table)


def _sensitivity(
    cells: pd.DataFrame, stability: pd.DataFrame, order: dict[str, list[str]], steps: int
) -> str:
    quantiles = _quantiles(cells, steps)
    edges = stability[stability["clip"] == "none"] if len(stability) else stability
    text = (
        "How much the lr matters, from the tuning runs: per lr, the median of steps to "
        "target over the tuning seeds (line) and, without clipping, their 25&ndash;75% range "
        "(band); solid: no clipping, dashed: norm clipping (value clipping left out, for "
        "legibility). Dotted verticals: the analytic stability edges (the stability table's "
        "theory_lr), in the optimizer's colour; &ldquo;never&rdquo;: not reached in the budget."
    )
    figure = _svg("sensitivity", lambda: _figure_sensitivity(quantiles, edges, order, steps))
    return _section("sensitivity", "Learning-rate sensitivity", text, figure)


def _stability(stab: pd.DataFrame) -> str:
    if stab.empty:
        return _section("stability", "Stability edges", "No stability edges in this study.")
    mse = stab[stab["loss"] == "mse"]
    bare, clipped = mse[mse["clip"] == "none"], mse[mse["clip"] != "none"]
    low, high = stab["ratio"].min(), stab["ratio"].max()
    ratios = f"every ratio {low:.3g}" if low == high else f"ratios {low:.3g} to {high:.3g}"
    text = (
        "Gradient descent with and without momentum on a fine lr grid around each analytic "
        "edge (float64, full batch, started next to the minimiser): max_stable_lr is the "
        "largest grid lr up to which every run converged, ratio = max_stable_lr / theory_lr, "
        "past_*: what the grid lrs beyond the edge did. "
        f"{int(stab['agrees'].sum())} of {len(stab)} measured edges agree with the closed form "
        f"within one grid step ({_pct(float(stab['grid_step'].median()))}; {ratios}). Past "
        f"the edge, unclipped MSE runs diverged in {_pct(float(bare['past_diverged'].mean()))} "
        f"of the lrs; clipped ones stayed bounded in {_pct(float(clipped['past_bounded'].mean()))}"
        f" and diverged in {_pct(float(clipped['past_diverged'].mean()))}."
    )
    past = ("past_converged", "past_diverged", "past_bounded")
    brief = (
        stab.groupby(["loss", "clip"], sort=False)
        .agg(
            edges=("agrees", "size"),
            agree=("agrees", "sum"),
            median_ratio=("ratio", "median"),
            **{c: (c, "mean") for c in past},
        )
        .reset_index()
    )
    brief[list(past)] = brief[list(past)].map(_pct)
    return _section(
        "stability",
        "Stability edges",
        text,
        _table(brief),
        _details("Every edge (the stability table)", _table(stab)),
    )


def _clipping(summary: pd.DataFrame, order: dict[str, list[str]]) -> str:
    if "none" not in order["clip"] or len(order["clip"]) < 2:
        text = "No clipped and unclipped runs to set side by side in this study."
        return _section("clipping", "Where clipping matters", text)
    ratios, said = _clip_ratios(summary), []
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
        f"unclipped ones, {DASH}: neither. Over (scenario, loss, optimizer): {'; '.join(said)}. "
        f"Median ratio per scenario: {per}."
    )
    figure = _svg("clipping", lambda: _figure_clipping(ratios, order))
    return _section("clipping", "Where clipping matters", text, figure)


def _robustness(robust: pd.DataFrame, p: params.StudyRecord, order: dict[str, list[str]]) -> str:
    present = _order(robust["scenario"], order["scenario"])
    outliers = [s for s in present if s in p.scenarios and p.scenarios[s].kind == "outliers"]
    shown = [s for s in present if s == REFERENCE or s in outliers] or present
    text = (
        "How far each fit lands from the line the data were drawn from (log scale): grey, "
        "the minimiser of the loss on the data; blue, the tuned winner (named under its "
        "bars) after training; medians over the reporting seeds. Drawn for the outlier "
        f"scenarios and {REFERENCE} as reference; the table has every scenario."
    )
    figure = _svg("robustness", lambda: _figure_robustness(robust, shown, order["loss"]))
    table = _details("Every scenario (the robustness table)", _table(robust))
    return _section("robustness", "Robustness to outliers", text, figure, table)


def _improvement(improvement: pd.DataFrame, order: dict[str, list[str]]) -> str:
    clips = _order(improvement["clip"], order["clip"])
    names = _order(improvement["optimizer"], order["optimizer"])
    others = improvement[improvement["optimizer"] != improvement["versus"]]
    mean = others.groupby(["clip", "optimizer"])["probability"].mean()
    best = [f"clip {c}: {mean[c].idxmax()} ({mean[c].max():.2f})" for c in clips if c in mean]
    text = (
        "Cell (row, column): the probability that a run of the row's optimizer needs fewer "
        "steps than one of the column's (rliable's probability of improvement, each at its "
        "tuned lr, averaged over scenarios &times; losses); 0.5 is a tie. The highest mean "
        f"over the others: {'; '.join(best)}."
    )
    figure = _svg("improvement", lambda: _figure_improvement(improvement, clips, names))
    return _section("improvement", "Probability of improvement", text, figure)


def _profiles(curves: pd.DataFrame, scores: pd.DataFrame, order: dict[str, list[str]]) -> str:
    clips = _order(curves["clip"], order["clip"])
    names = _order(curves["optimizer"], order["optimizer"])
    top = scores.sort_values("score", ascending=False, kind="stable").drop_duplicates("clip")
    top = top.set_index("clip").reindex([c for c in clips if c in set(top["clip"])])
    listed = [
        f"clip {c}: {r.optimizer} ({r.score:.2f})"
        for c, r in zip(top.index, top.itertuples(), strict=True)
    ]
    text = (
        "Performance profiles (AlgoPerf): &rho;(&tau;) is the share of workloads (scenario "
        "&times; loss) on which the optimizer's median steps are within &tau; &times; the "
        "best optimizer's; higher and further left is better; the score (in the legend) is "
        f"the normalised area up to &tau; = 4. Best score: {'; '.join(listed)}."
    )
    figure = _svg("profiles", lambda: _figure_profiles(curves, scores, clips, names))
    return _section("profiles", "Performance profiles", text, figure, _table(scores))


def _twins(twins: pd.DataFrame) -> str:
    if twins.empty:
        return _section("twins", "Twins", "No twin cells in this study.")
    worst = twins.sort_values("largest_rel_diff", ascending=False, kind="stable").head(5)
    top, same = worst.iloc[0], int((twins["largest_rel_diff"] == 0).sum())
    apart = [m for m in analysis.FINALS if m not in analysis.EXACT]
    skipped = f"(Not compared: {', '.join(apart)}, taken in different precision.) " if apart else ""
    found = (
        f"the largest relative difference is {top['largest_rel_diff']:.3g} ({top['cell']}); "
        f"{same} of {len(twins)} cells agree bit for bit"
        if top["largest_rel_diff"] > 0
        else f"all {len(twins)} cells agree bit for bit (largest relative difference 0)"
    )
    text = (
        f"The headline grid's {len(twins)} cells, each trained by the reference engine and "
        f"by the batched one; over their finals ({', '.join(analysis.EXACT)}), {found}. "
        f"{skipped}Below, the five largest differences."
    )
    columns = {"cell": "cell", "largest_rel_diff": "largest rel. diff"}  # short headers
    for m in analysis.EXACT:
        for side in ("reference", "batched"):
            columns[f"{side}_{m}"] = f"{m.removeprefix('final_')} {side}"
    table = worst[[c for c in columns if c in worst.columns]].rename(columns=columns)
    return _section("twins", "Twins: reference and batched engine", text, _table(table, 9))


def _classification(tables: dict[str, pd.DataFrame]) -> str:
    classes = tables.get("classes")
    if classes is None or classes.empty:
        text = "Classification results are not in this study."
        return _section("classification", "Classification", text)
    shown = [c for c in CLASS_COLUMNS if c in classes.columns] or list(classes.columns)
    text = (
        "Points labelled by their side of a line, fitted by a linear classifier: per "
        "configuration, its tuned lr, the IQM of steps until every training point is "
        f"classified right with its {protocol.LEVEL:.0%} interval, the success rate, and the "
        "median accuracy and angle to the true boundary over the reporting seeds."
    )
    table = _details("Every column (the classes table)", _table(classes))
    return _section("classification", "Classification", text, _table(classes[shown]), table)


def html(
    tables: dict[str, pd.DataFrame],
    cells: pd.DataFrame,
    traces: pd.DataFrame,
    p: params.StudyRecord,
    bootstrap: params.Bootstrap,
) -> str:
    """The report page: tables as pipeline.stages.analysis.tables names them (and
    optionally "classes"), the study's cells and traces, what the study ran (its
    manifest) and the bootstrap the intervals used."""
    summary, stability, s = tables["summary"], tables["stability"], p.study
    order = {  # the params' order, then anything the tables hold beyond it
        "scenario": _order(summary["scenario"], s.scenarios),
        "loss": _order(summary["loss"], s.losses),
        "optimizer": _order(summary["optimizer"], s.optimizers),
        "clip": _order(summary["clip"], s.clips),
    }
    sections = [
        _protocol(p, bootstrap, summary, stability),
        _winners(summary, traces, p, order),
        _tuned(summary, order, s.steps),
        _sensitivity(cells, stability, order, s.steps),
        _stability(stability),
        _clipping(summary, order),
        _robustness(tables["robustness"], p, order),
        _improvement(tables["improvement"], order),
        _profiles(tables["curves"], tables["profiles"], order),
        _twins(tables["twins"]),
        _classification(tables),
    ]
    body = "".join(sections)
    nav = "".join(f'<a href="#{i}">{t}</a>' for i, t in re.findall(r'id="(\w+)"><h2>([^<]*)', body))
    title = "gradlab: optimizers, losses and gradient clipping on a linear model"
    lead = (
        f"{len(summary)} configurations ({' &times; '.join(str(len(order[k])) for k in CONFIG)} "
        f"{', '.join(CONFIG)}) and {len(cells)} trained cells, summarised from the study's "
        "tables; every figure and table below is computed from them."
    )
    head = f'<meta charset="utf-8"><title>{title}</title><style>{CSS}</style>'
    return (
        f'<!DOCTYPE html><html lang="en"><head>{head}</head><body><h1>{title}</h1>'
        f"<p>{lead}</p><nav>{nav}</nav>{body}</body></html>\n"
    )
