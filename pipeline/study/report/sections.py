"""The report's sections: each says what it shows and how to read it, then its tables and
figures. Every number comes from analysis's tables (pipeline.study.analysis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline import figures as toolkit
from pipeline import params
from pipeline.study import analysis
from pipeline.study.protocol import LEVEL
from pipeline.study.report import figures, markup
from pipeline.study.report.clipping import idle_note
from pipeline.study.report.markup import details, order_of, percent, section, table

if TYPE_CHECKING:
    import pandas as pd

CLASS_COLUMNS = ("config", "tuned_lr", "iqm_steps", "iqm_lo", "iqm_hi", "success_rate",
                 "first_touch_median", "median_accuracy", "median_angle_deg",
                 "clip_fraction")  # fmt: skip  # shown
REFERENCE = "noisy"  # the Gaussian-noise scenario the outlier scenarios shift points of
DASH = toolkit.DASH


def protocol(
    p: params.StudyRecord, b: params.Bootstrap, summary: pd.DataFrame, stability: pd.DataFrame,
    tols: dict[str, float],
) -> str:  # fmt: skip
    """How every number was made; `tols`: each scenario's tol in w and b (cells' tol)."""
    import pandas as pd

    s, listed = p.study, ", ".join
    shot = summary.drop_duplicates("optimizer")
    default = listed(f"{r.optimizer} {r.default_lr:g}" for r in shot.itertuples())
    edge = listed(order_of(stability["optimizer"], s.optimizers)) if len(stability) else "none"
    text = (
        "Each configuration (scenario &times; loss &times; optimizer &times; clip) trains the "
        f"linear model y = w x + b for {s.steps} steps in {s.dtype}. <b>Tuning</b>: every lr "
        f"of a log grid from {s.lr.low:g} to {s.lr.high:g} at {s.lr.per_decade} points a "
        f"decade, the library's default ({default}) and, for {edge}, "
        f"{listed(f'{f:g}' for f in s.lr.near_edge)} &times; the analytic MSE stability edge, "
        f"on tuning seeds {listed(map(str, s.seeds.tune))}. The tuned lr has the lowest "
        "median sustained steps over the tuning seeds (ties: the smaller lr; never at any "
        "lr: the grid lr nearest the default). <b>Reporting</b>: the tuned lr, and the "
        f"default once more, on fresh seeds {listed(map(str, s.seeds.report))}. "
        "<b>Target</b>: the set of minimisers of the configuration's own loss on that "
        "seed's data (a point, or where they are not unique, as L1's often are, a convex "
        "polygon: the distance is to the set, exactly), within tol &times; |(slope, "
        "intercept)| of the generating line (tol below, a share of the line's size: the "
        "same demand on w and b in every scenario). <b>Measure</b>: with d<sub>t</sub> the "
        "distance after step t, the <b>sustained</b> steps are the least T with "
        "d<sub>t</sub> &le; tol for every t &ge; T up to the budget (+&infin; if none: "
        "written &ldquo;never&rdquo;), kept by each engine at every step; the <b>first "
        "touch</b> is the least t with d<sub>t</sub> &le; tol. AlgoPerf and DeepOBS time "
        "the first touch, which suits a run stopped at the target by an oracle; here runs "
        "go on, and a run that touches and leaves (a large lr oscillating, minibatch "
        "noise) is not done: gradlab ranks on the sustained time and reports the first "
        "touch, the share of steps within tol after it and the largest excursion beside "
        "it. <b>Statistics</b>: over the reporting seeds, the interquartile mean (IQM: the "
        "mean once a quarter of the runs is dropped at each end, as rliable; &infin; when "
        "more than a quarter never got there), the median, p90 and p99 (of the steps, and "
        "of the final error: summary.csv), and the success "
        f"rate, with {LEVEL:.0%} percentile bootstrap intervals ({b.reps} resamples, seed "
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
        rows.append([name, scenario["kind"], scenario["tol"], tols.get(name), batch, settings])
    columns = ["scenario", "kind", "tol (share)", "tol", "batch", "settings"]
    scenarios = pd.DataFrame(rows, columns=columns)
    return section("protocol", "Protocol", text, table(scenarios))


def tuned(summary: pd.DataFrame, order: dict[str, list[str]], steps: int) -> str:
    iqm = summary["iqm_steps"].to_numpy(np.float64)
    text = (
        "Each optimizer &times; clip mode at its own tuned lr: the dot is the IQM of steps to "
        f"target over the reporting seeds, the bar its {LEVEL:.0%} interval (log "
        "scale); a triangle "
        "on the &ldquo;never&rdquo; line: the IQM is infinite; a bar reaching it: the "
        f"interval is open. {int((summary['success_rate'] == 1).sum())} of {len(summary)} "
        "configurations reached the target on every reporting seed; "
        f"{int(np.isinf(iqm).sum())} have an infinite IQM."
    )
    figure = toolkit.svg("tuned", lambda: figures.tuned(summary, order, steps))
    every = details("Every configuration (the summary table)", table(summary))
    return section("tuned", "Tuned comparison", text, figure, every)


def stability(stab: pd.DataFrame) -> str:
    if stab.empty:
        return section("stability", "Stability edges", "No stability edges in this study.")
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
        f"within one grid step ({percent(float(stab['grid_step'].median()))}; {ratios}). Past "
        f"the edge, unclipped MSE runs diverged in {percent(float(bare['past_diverged'].mean()))} "
        f"of the lrs; clipped ones stayed bounded in "
        f"{percent(float(clipped['past_bounded'].mean()))} and diverged in "
        f"{percent(float(clipped['past_diverged'].mean()))}."
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
    brief[list(past)] = brief[list(past)].map(markup.percent)
    return section(
        "stability",
        "Stability edges",
        text,
        table(brief),
        details("Every edge (the stability table)", table(stab)),
    )


def robustness(robust: pd.DataFrame, p: params.StudyRecord, order: dict[str, list[str]]) -> str:
    present = order_of(robust["scenario"], order["scenario"])
    outliers = [s for s in present if s in p.scenarios and p.scenarios[s].kind == "outliers"]
    shown = [s for s in present if s == REFERENCE or s in outliers] or present
    text = (
        "How far each fit lands from the line the data were drawn from (log scale): grey, "
        "the minimiser of the loss on the data; blue, the tuned winner (named under its "
        "bars) after training; medians over the reporting seeds. Drawn for the outlier "
        f"scenarios and {REFERENCE} as reference; the table has every scenario."
    )
    figure = toolkit.svg("robustness", lambda: figures.robustness(robust, shown, order["loss"]))
    every = details("Every scenario (the robustness table)", table(robust))
    return section("robustness", "Robustness to outliers", text, figure, every)


def improvement(improvement: pd.DataFrame, order: dict[str, list[str]]) -> str:
    clips = order_of(improvement["clip"], order["clip"])
    names = order_of(improvement["optimizer"], order["optimizer"])
    others = improvement[improvement["optimizer"] != improvement["versus"]]
    apart = others[(others["lo"] > 0.5) | (others["hi"] < 0.5)]
    text = (
        "Cell (row, column): the probability that a run of the row's optimizer needs fewer "
        "sustained steps than one of the column's (rliable's probability of improvement, "
        "each at its tuned lr, averaged over scenarios &times; losses); 0.5 is a tie. "
        f"{LEVEL:.0%} intervals from resampling the seeds within each task: "
        f"{len(apart)} of {len(others)} ordered pairs exclude 0.5 (the table)."
    )
    figure = toolkit.svg("improvement", lambda: figures.improvement(improvement, clips, names))
    every = details("Every pair, with its interval (the improvement table)", table(others))
    return section("improvement", "Probability of improvement", text, figure, every)


def profiles(
    curves: pd.DataFrame, scores: pd.DataFrame, wins: pd.DataFrame, order: dict[str, list[str]]
) -> str:
    clips = order_of(curves["clip"], order["clip"])
    names = order_of(curves["optimizer"], order["optimizer"])
    top = scores.sort_values("score", ascending=False, kind="stable").drop_duplicates("clip")
    top = top.set_index("clip").reindex([c for c in clips if c in set(top["clip"])])
    listed = [
        f"clip {c}: {r.optimizer} ({r.score:.2f} [{r.score_lo:.2f}, {r.score_hi:.2f}], "
        f"top in {percent(r.p_top)} of resamples)"
        for c, r in zip(top.index, top.itertuples(), strict=True)
    ]
    text = (
        "Performance profiles (AlgoPerf): &rho;(&tau;) is the share of workloads (scenario "
        "&times; loss) on which the optimizer's median sustained steps are within &tau; "
        "&times; the best optimizer's; higher and further left is better; the score (in the "
        f"legend) is the normalised area up to &tau; = 4, with its {LEVEL:.0%} interval "
        "(seeds resampled within each task) and p_top, the share of resamples in which it "
        f"scores highest. Best score: {'; '.join(listed)}. Wins: the tasks on which an "
        "optimizer has the lowest IQM (ties shared), with intervals."
    )
    figure = toolkit.svg("profiles", lambda: figures.profiles(curves, scores, clips, names))
    return section("profiles", "Performance profiles", text, figure, table(scores), table(wins))


def twins(twins: pd.DataFrame) -> str:
    if twins.empty:
        return section("twins", "Twins", "No twin cells in this study.")
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
    largest = worst[[c for c in columns if c in worst.columns]].rename(columns=columns)
    return section("twins", "Twins: reference and batched engine", text, table(largest, 9))


def classification(tables: dict[str, pd.DataFrame]) -> str:
    classes = tables.get("classes")
    if classes is None or classes.empty:
        text = "Classification results are not in this study."
        return section("classification", "Classification", text)
    shown = [c for c in CLASS_COLUMNS if c in classes.columns] or list(classes.columns)
    idle = tables.get("class_idle")
    text = (
        "Points labelled by their side of a line, fitted by a linear classifier: per "
        "configuration, its tuned lr, the IQM of steps until every training point is "
        f"classified right with its {LEVEL:.0%} interval, the success rate, and the "
        "median accuracy and angle to the true boundary over the reporting seeds. "
        f"{'' if idle is None else idle_note(idle, 'their rows repeat the unclipped ones.')}"
    )
    every = details("Every column (the classes table)", table(classes))
    return section("classification", "Classification", text, table(classes[shown]), every)
