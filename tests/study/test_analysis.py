"""What the study found: each analysis table against a direct computation, on hand-made
tables and on real engine runs of tiny studies (stability edges, robustness, rliable's
probability of improvement, AlgoPerf's profiles, the headline figures)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline import grid, params, polygon
from pipeline.grid import data, reference, trace
from pipeline.study import analysis, answer, chunks, clipping, minimiser, winners
from pipeline.study import design as st
from pipeline.study.configuration import CONFIG, config_name
from pipeline.study.protocol import MEASURE
from tests.helpers import study_fixtures

NEVER = -1  # the engines' steps_sustained where a run never stayed within tol
EXACT = 1e-12  # a direct computation of the same numbers, in another order


def steps_of(column: pd.Series) -> np.ndarray:
    steps = column.to_numpy(np.float64)
    return np.where(steps == NEVER, np.inf, steps)


# --- stability, on a hand-made edge part ------------------------------------------------
def edge_rows(
    key: tuple[str, ...], theory: float, converged: list[bool], **columns: list
) -> list[dict]:
    """One edge configuration: lrs theory * (1 + k / 100), k = -5 .. 5, start 1e-4 from the
    target (0.5, 0.5), converged where asked; columns override per lr."""
    rows = []
    for i, (k, ok) in enumerate(zip(range(-5, 6), converged, strict=True)):
        row = {
            **dict(zip(CONFIG, key, strict=True)),
            "part": "edge",
            "lr": theory * (1 + k / 100),
            "theory_lr": theory,
            "steps_sustained": 100 if ok else NEVER,
            "init_weight": 0.5 + 1e-4,
            "init_bias": 0.5,
            "target_weight": 0.5,
            "target_bias": 0.5,
            "target_error": 1e-7 if ok else 1e-3,
            "diverged": 0,
        }
        rows.append(row | {c: v[i] for c, v in columns.items()})
    return rows


GOOD = ("noisy", "mse", "sgd", "none")  # converges up to the edge, then 1 bounded, 4 blown
EARLY = ("noisy", "mse", "momentum", "none")  # stops converging 3 steps early
HOLE = ("tutorial", "huber", "nesterov", "norm")  # one miss below the edge, then converges


@pytest.fixture(scope="module")
def hand_stability() -> pd.DataFrame:
    good = edge_rows(
        GOOD,
        0.5,
        [True] * 6 + [False] * 5,
        diverged=[0] * 8 + [1] * 3,
        target_error=[1e-7] * 6 + [1e-3, 1e9, 1.0, 1.0, 1.0],  # 1e9: past BLOWN, finite
    )
    early = edge_rows(EARLY, 2.0, [True] * 2 + [False] * 9)
    hole = edge_rows(HOLE, 0.1, [True, True, False, True, True, True] + [False] * 5)
    other = [r | {"part": "report"} for r in edge_rows(GOOD, 9.0, [False] * 11)]  # not edge
    frame = pd.DataFrame(good + early + hole + other)
    return analysis.stability(frame.sample(frac=1.0, random_state=0)).set_index("config")


def test_stability_max_stable_lr_is_the_last_lr_before_the_first_miss(
    hand_stability: pd.DataFrame,
) -> None:
    """max_stable_lr is the lr before the first miss; agrees within one grid step."""
    # GOOD converges to the edge; EARLY misses from k = -3; HOLE misses once at k = -3
    good, early, hole = (hand_stability.loc[config_name(*k)] for k in (GOOD, EARLY, HOLE))

    assert (good["max_stable_lr"], good["ratio"], good["agrees"]) == (0.5, 1.0, True)
    assert early["max_stable_lr"] == pytest.approx(2.0 * 0.96, rel=EXACT)
    assert early["ratio"] == pytest.approx(0.96, rel=EXACT) and not early["agrees"]
    assert hole["max_stable_lr"] == pytest.approx(0.1 * 0.96, rel=EXACT)
    assert not hole["agrees"]


def test_stability_grid_step_and_agreement_are_relative(hand_stability: pd.DataFrame) -> None:
    """grid_step is the lr spacing relative to the edge."""
    assert hand_stability["grid_step"].to_numpy() == pytest.approx(0.01, rel=1e-9)
    assert hand_stability.loc[config_name(*GOOD), "theory_lr"] == 0.5


def test_stability_past_the_edge_fractions_count_what_each_lr_did(
    hand_stability: pd.DataFrame,
) -> None:
    """Past the edge each lr counts once: converged, diverged (or blown) or bounded."""
    # GOOD, k = 1 .. 5: bounded (error 1e-3), blown (1e6, finite), diverged x 3
    good = hand_stability.loc[config_name(*GOOD)]

    assert good["past_converged"] == 0.0
    assert good["past_diverged"] == pytest.approx(4 / 5, abs=EXACT)
    assert good["past_bounded"] == pytest.approx(1 / 5, abs=EXACT)


def test_stability_has_one_row_per_edge_configuration(hand_stability: pd.DataFrame) -> None:
    """Only the edge part's rows count: three configurations, whatever the row order."""
    assert sorted(hand_stability.index) == sorted(config_name(*k) for k in (GOOD, EARLY, HOLE))


# --- stability, on real engine runs ----------------------------------------------------
@pytest.fixture(scope="module")
def edges(raw_params: dict) -> pd.DataFrame:
    """analysis.stability of the edge part of tutorial and noisy, MSE, sgd and nesterov,
    unclipped and norm-clipped, the committed stability grid (2000 steps, float64)."""
    p = study_fixtures.params_for(
        raw_params,
        scenarios=["tutorial", "noisy"],
        losses=["mse"],
        optimizers=["sgd", "nesterov"],
        clips=["none", "norm"],
        stability=raw_params["study"]["stability"],
    )
    cells, _ = study_fixtures.train(st.edge_parts(p, study_fixtures.data_for(p)), 10**6)
    return analysis.stability(cells)


def test_real_edges_agree_with_the_closed_form(edges: pd.DataFrame) -> None:
    """Real runs: the largest converging lr is within one grid step of the edge."""
    assert len(edges) == 2 * 2 * 2
    assert edges["agrees"].all(), edges[["config", "ratio"]]
    assert (edges["past_converged"] == 0).all()


def test_unclipped_mse_past_the_edge_diverges(edges: pd.DataFrame) -> None:
    """Without clipping every lr past the edge blows up."""
    unclipped = edges[edges["clip"] == "none"]

    assert (unclipped["past_diverged"] == 1.0).all(), unclipped[["config", "past_diverged"]]


def test_norm_clipped_mse_past_the_edge_stays_bounded(edges: pd.DataFrame) -> None:
    """Norm-clipped runs past the edge neither converge nor diverge: they stay bounded."""
    # each step is at most lr * max_norm: the runs orbit the minimiser at ~0.1-0.4
    clipped = edges[edges["clip"] == "norm"]

    assert (clipped["past_bounded"] == 1.0).all(), clipped[["config", "past_bounded"]]
    assert (clipped["past_diverged"] == 0.0).all()


# --- the tiny study: summary, winners, robustness, improvement, profiles ---------------
@pytest.fixture(scope="module")
def summary(tiny_study: study_fixtures.Study) -> pd.DataFrame:
    b = tiny_study.p.analysis.bootstrap
    return analysis.summary(tiny_study.cells, tiny_study.tuned, b.reps, b.seed)


def test_the_answer_names_each_tasks_best_with_the_lowest_iqm_and_its_winner_set(
    tiny_study: study_fixtures.Study, summary: pd.DataFrame
) -> None:
    """answer.table: one row per (scenario, loss); its best has the lowest IQM of the task
    (every tied one named), its winner set is winners.csv's members, its fit robustness's."""
    steps = tiny_study.p.study.steps
    report = tiny_study.cells[tiny_study.cells["part"] == "report"]
    sets = winners.sets(report, MEASURE, steps)
    robust = winners.fits(report, MEASURE, steps, sets)

    found = answer.table(summary, sets, robust)

    assert len(found) == summary.groupby(["scenario", "loss"]).ngroups
    for row in found.itertuples(index=False):
        rows = summary[(summary["scenario"] == row.scenario) & (summary["loss"] == row.loss)]
        counted = np.where(np.isinf(rows["iqm_steps"]), steps + 1, rows["iqm_steps"])
        lowest = rows[counted == counted.min()]
        named = sorted("+".join(c.split("-")[-2:]) for c in lowest["config"])
        assert sorted(row.best.split(" = ")) == named
        assert row.iqm_steps == float(lowest["iqm_steps"].iloc[0])
        members = sets[(sets["scenario"] == row.scenario) & (sets["loss"] == row.loss)]
        assert row.set_size == int(members["in_set"].sum()) >= len(named)
        assert row.rivals == len(members)


def test_the_printed_answer_fits_100_columns_and_names_every_task(
    tiny_study: study_fixtures.Study, summary: pd.DataFrame
) -> None:
    """answer.text: a line per task, none wider than 100 columns, the measure named."""
    steps = tiny_study.p.study.steps
    report = tiny_study.cells[tiny_study.cells["part"] == "report"]
    sets = winners.sets(report, MEASURE, steps)
    found = answer.table(summary, sets, winners.fits(report, MEASURE, steps, sets))

    text = answer.text(found, 0.9, 4)

    lines = text.splitlines()
    assert max(map(len, lines)) <= 100 and "sustained" in text and "90%" in text
    for row in found.itertuples(index=False):
        assert any(line.startswith(f"{row.scenario:<11}{row.loss:<9}") for line in lines)


def tasks(tiny_study: study_fixtures.Study, clip: str) -> tuple[list[str], np.ndarray]:
    """The optimizers and their steps (optimizers, scenario x loss, seeds), tuned rows."""
    rows = tiny_study.report[
        (tiny_study.report["lr_kind"] == "tuned") & (tiny_study.report["clip"] == clip)
    ]
    names = sorted(set(rows["optimizer"]))
    keys = sorted(set(zip(rows["scenario"], rows["loss"], strict=True)))
    steps = np.array(
        [
            [
                steps_of(
                    rows[
                        (rows["optimizer"] == o) & (rows["scenario"] == s) & (rows["loss"] == loss)
                    ].sort_values("seed")["steps_sustained"]
                )
                for s, loss in keys
            ]
            for o in names
        ]
    )
    return names, steps


def test_improvement_is_the_pairwise_count_averaged_over_tasks(
    tiny_study: study_fixtures.Study,
) -> None:
    """P(a < b) is a direct pairwise count of runs, averaged over tasks, inside its
    interval."""
    table = analysis.improvement(tiny_study.cells, 200, 0)
    assert ((table["lo"] <= table["probability"]) & (table["probability"] <= table["hi"])).all()

    for clip in tiny_study.p.study.clips:
        names, steps = tasks(tiny_study, clip)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                x, y = steps[i][:, :, None], steps[j][:, None, :]
                count = ((x < y).sum(axis=(1, 2)) + 0.5 * (x == y).sum(axis=(1, 2))) / (
                    x.shape[1] * y.shape[2]
                )
                got = table[
                    (table["clip"] == clip) & (table["optimizer"] == a) & (table["versus"] == b)
                ]
                assert got["probability"].tolist() == pytest.approx([count.mean()], abs=EXACT)
    pivot = table.pivot_table(index=["clip", "optimizer"], columns="versus", values="probability")
    for clip in tiny_study.p.study.clips:
        m = pivot.loc[clip].to_numpy()
        np.testing.assert_allclose(m + m.T, 1.0, atol=EXACT)
        np.testing.assert_allclose(np.diag(m), 0.5, atol=EXACT)


def direct_ratios(medians: np.ndarray) -> np.ndarray:
    """AlgoPerf's r: steps over the workload's fewest; inf where missed, 1 at the best."""
    best = medians.min(axis=0)
    out = np.empty_like(medians)
    for i, j in np.ndindex(medians.shape):
        t, b = medians[i, j], best[j]
        out[i, j] = math.inf if math.isinf(t) else 1.0 if t == b else t / b
    return out


def test_profiles_rho_and_scores_are_the_direct_ratios(tiny_study: study_fixtures.Study) -> None:
    """rho(tau) and the score follow from the direct ratios to the fastest optimizer."""
    scores, curves = analysis.profiles(tiny_study.cells, 200, 0)

    assert ((scores["score_lo"] <= scores["score"]) & (scores["score"] <= scores["score_hi"])).all()
    assert scores.groupby("clip")["p_top"].sum().ge(1.0 - EXACT).all()  # ties count for each
    for clip in tiny_study.p.study.clips:
        names, steps = tasks(tiny_study, clip)
        r = direct_ratios(np.median(steps, axis=-1))
        for i, name in enumerate(names):
            row = scores[(scores["clip"] == clip) & (scores["optimizer"] == name)].iloc[0]
            for tau in analysis.PROFILE_AT:
                assert row[f"rho_{tau:g}"] == pytest.approx((r[i] <= tau).mean(), abs=EXACT)
            expected = np.maximum(0.0, 4.0 - r[i]).mean() / 3.0
            assert row["score"] == pytest.approx(expected, abs=EXACT)
            curve = curves[(curves["clip"] == clip) & (curves["optimizer"] == name)]
            rho = [(r[i] <= t).mean() for t in curve["tau"]]
            assert curve["rho"].to_numpy() == pytest.approx(rho, abs=EXACT)
            assert curve["tau"].tolist() == analysis.TAUS.tolist()
    assert scores["score"].between(0.0, 1.0).all()
    assert curves["rho"].between(0.0, 1.0).all()


# --- robustness: the loss's own minimiser against the generating line ---------------------
@pytest.fixture(scope="module")
def outliers(raw_params: dict) -> study_fixtures.Study:
    return study_fixtures.build(
        raw_params,
        scenarios=["outliers10", "outliers33"],
        losses=["mse", "l1", "huber"],
        optimizers=["sgd"],
        clips=["none"],
    )


@pytest.fixture(scope="module")
def robust(outliers: study_fixtures.Study) -> pd.DataFrame:
    report = outliers.cells[outliers.cells["part"] == "report"]
    found = winners.fits(report, MEASURE, outliers.p.study.steps)
    return found.set_index(["scenario", "loss"])


def line_distance(loss: str, p: params.Params, x: np.ndarray, y: np.ndarray) -> float:
    """Distance from the loss's set of minimisers on (x, y) to y = 2x (its point's where it
    is one; MSE's from numpy.polyfit)."""
    if loss == "mse":
        w, b = np.polyfit(x, y, 1)
        return math.hypot(w - 2.0, b - 0.0)
    kwargs = getattr(p.train.losses, loss).model_dump()
    (found,) = minimiser.sets(loss, kwargs, x[None], y[None])  # type: ignore[arg-type]
    return float(polygon.distance(np.array([2.0, 0.0]), found))


def test_robustness_minimiser_error_is_the_minimiser_distance_to_the_line(
    outliers: study_fixtures.Study, robust: pd.DataFrame
) -> None:
    """minimiser_error: the minimiser's median distance to the line (MSE: np.polyfit)."""
    for (name, loss), row in robust.iterrows():
        points = outliers.data[name]
        rows = [points.seeds.index(s) for s in outliers.p.study.seeds.report]
        expected = np.median(
            [line_distance(loss, outliers.p, points.x[k], points.y[k]) for k in rows]
        )

        assert row["minimiser_error"] == pytest.approx(expected, rel=1e-9), (name, loss)


def test_on_outliers_mse_lands_farther_from_the_line_than_l1_and_huber(
    robust: pd.DataFrame,
) -> None:
    """Shifted targets pull least squares off the line; L1 and Huber resist them."""
    for name in ("outliers10", "outliers33"):
        mse = robust.loc[(name, "mse"), "minimiser_error"]

        assert mse > robust.loc[(name, "l1"), "minimiser_error"]
        assert mse > robust.loc[(name, "huber"), "minimiser_error"]


def test_robustness_trained_error_is_the_winner_median_true_error(
    outliers: study_fixtures.Study, robust: pd.DataFrame
) -> None:
    """trained_error is the median true_error of the named configuration's tuned rows."""
    tuned = outliers.report[outliers.report["lr_kind"] == "tuned"]
    for (name, loss), row in robust.iterrows():
        rows = tuned[(tuned["scenario"] == name) & (tuned["loss"] == loss)]

        assert (row["optimizer"], row["clip"]) == ("sgd", "none")
        assert row["trained_error"] == np.median(rows["true_error"])


# --- twins and the headline -------------------------------------------------------------
@pytest.fixture(scope="module")
def twins(raw_params: dict) -> pd.DataFrame:
    """analysis.twins of a 2 x 2 x 2 headline grid (50 steps) through both engines."""
    p = study_fixtures.params_for(raw_params)
    train = p.train.model_copy(
        update={
            "steps": 50,
            "grid": p.train.grid.model_copy(
                update={
                    "losses": ["mse", "huber"],
                    "optimizers": ["sgd", "adam"],
                    "clips": ["none", "norm"],
                }
            ),
        }
    )
    cells = grid.cells(train)
    x, y = data.points(p.generate)
    batched, _ = chunks.train_chunk(chunks.Chunk(st.twin_part(p, cells, x, y), engine="exact"))
    inputs, targets = (torch.tensor(v).reshape(-1, 1) for v in (x, y))
    ref = []
    for c in cells:
        m = trace.measures(reference.train_cell(c, inputs, targets), (2.0, 0.0))
        ref.append({"cell": c.name, **{k: m[k] for k in analysis.FINALS}})
    return analysis.twins(pd.DataFrame(batched), pd.DataFrame(ref))


def test_twins_agree_bit_for_bit_on_the_exact_finals(twins: pd.DataFrame) -> None:
    """Both engines give equal exact finals on every headline cell: largest_rel_diff 0."""
    assert len(twins) == 8
    assert (twins["largest_rel_diff"] == 0.0).all()
    for m in analysis.EXACT:
        assert (twins[f"reference_{m}"] == twins[f"batched_{m}"]).all(), m


@pytest.fixture(scope="module")
def found(tiny_study: study_fixtures.Study, summary: pd.DataFrame, twins: pd.DataFrame) -> dict:
    """The analysis stage's tables of the tiny study (its edge part trained too)."""
    edge, _ = study_fixtures.train(st.edge_parts(tiny_study.p, tiny_study.data), 10**6)
    scores, _ = analysis.profiles(tiny_study.cells, 200, 0)
    steps = tiny_study.p.study.steps
    return {
        "summary": summary,
        "profiles": scores,
        "wins": analysis.wins(tiny_study.cells, steps, 200, 0),
        "agreement": answer.agreement_table(0.95),
        "stability": analysis.stability(edge),
        "twins": twins,
    }


def leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in leaves(v)]
    return [value]


def test_headline_has_the_documented_keys_and_only_finite_numbers(
    tiny_study: study_fixtures.Study, found: dict
) -> None:
    """headline() has its documented keys, and every leaf is a finite number."""
    head = analysis.headline(found)

    assert set(head) == {
        "profile_score", "wins", "half_split_agreement", "edges_agreeing",
        "twins_largest_rel_diff",
    }  # fmt: skip
    assert head["half_split_agreement"] == 0.95
    s = tiny_study.p.study
    assert set(head["profile_score"]) == set(s.clips)
    assert all(set(v) == set(s.optimizers) for v in head["profile_score"].values())
    assert set(head["wins"]) == set(s.optimizers)
    assert sum(head["wins"].values()) == pytest.approx(len(s.scenarios) * len(s.losses))
    assert 0.0 <= head["edges_agreeing"] <= 1.0 and head["twins_largest_rel_diff"] == 0.0
    for leaf in leaves(head):
        assert isinstance(leaf, int | float) and not isinstance(leaf, bool), leaf
        assert math.isfinite(leaf), leaf


def test_a_queued_experiment_links_its_report_through_the_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a queued experiment's temporary copy (cwd under DVC_ROOT/.dvc/tmp/exps) the
    report line names the experiment and where `dvc exp apply` puts the report; in the
    workspace it is the file's own link."""
    root = tmp_path / "repo"
    copy = root / ".dvc/tmp/exps/tmpabc"
    html = Path("reports/study/index.html")
    (copy / html).parent.mkdir(parents=True)
    monkeypatch.chdir(copy)

    queued = analysis.report_line(html, {"DVC_ROOT": str(root), "DVC_EXP_NAME": "adam-lr"})
    monkeypatch.chdir(root)
    here = analysis.report_line(html, {"DVC_ROOT": str(root), "DVC_EXP_NAME": "adam-lr"})

    assert ".dvc/tmp" not in queued and "`dvc exp apply adam-lr`" in queued
    assert queued.endswith(f"brings it to {(root / html).resolve().as_uri()}")
    assert here == f"Report: {(root / html).resolve().as_uri()}"


def test_clip_idle_marks_the_clipped_configurations_that_never_clipped() -> None:
    """clip_idle: True exactly where every reporting seed at the tuned lr has clip_fraction
    0; one clipped step on one seed, or any other part or lr kind, leaves it False."""
    rows = [
        {"part": part, "lr_kind": kind, "scenario": "s", "loss": "mse", "optimizer": o,
         "clip": clip, "seed": seed, "clip_fraction": fraction}
        for o, fractions in (("sgd", (0.0, 0.0)), ("adam", (0.0, 0.01)))
        for clip in ("none", "norm")
        for seed, fraction in enumerate(fractions)
        for part, kind in (("report", "tuned"), ("report", "default"), ("tune", ""))
    ]  # fmt: skip
    cells = pd.DataFrame(rows)
    cells.loc[(cells["part"] != "report") | (cells["lr_kind"] != "tuned"), "clip_fraction"] = 0.5

    idle = clipping.idle(cells)

    assert list(idle.columns) == ["norm"]
    assert idle["norm"].to_dict() == {("s", "mse", "adam"): False, ("s", "mse", "sgd"): True}
