"""The study's cells: the lr grids, the tune, report, edge and twin parts of the committed
params, checked against numpy, the minimisers and the headline grid (nothing trains)."""

import copy
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline import grid, params, polygon
from pipeline.engine import regression
from pipeline.grid import data
from pipeline.optimizers import OPTIMIZERS
from pipeline.study import design as st
from pipeline.study import minimiser, rates, scenarios
from pipeline.study.configuration import config_name

TARGET_ABS = 1e-12  # minimisers of one data set, computed alone or stacked with others
EDGE_REL = 1e-12  # an analytic edge: closed form vs numpy.linalg.eigvalsh


def study_data(p: params.Params) -> dict[str, scenarios.Points]:
    seeds = scenarios.study_seeds(p.study)
    return {n: scenarios.points(n, p.scenarios[n], seeds) for n in p.study.scenarios}


def labels(parts: list[st.Part]) -> pd.DataFrame:
    """Every cell of the parts: its labels, lr and seed."""
    return pd.concat(
        [pd.DataFrame({**q.labels, "lr": q.cells.lr, "seed": q.cells.seed}) for q in parts],
        ignore_index=True,
    )


def loss_kwargs(p: params.Params, loss: str) -> dict[str, float]:
    return getattr(p.train.losses, loss).model_dump()


def check_data_and_targets(
    p: params.Params, parts: list[st.Part], found: dict[str, scenarios.Points]
) -> None:
    """Each cell trains on its scenario's data set of its seed, toward the set of minimisers
    of its loss on that data set (minimiser.sets of that one data set, padded; where it is
    one point, minimiser.minimiser's)."""
    for q in parts:
        table = pd.DataFrame({**q.labels, "seed": q.cells.seed, "row": np.arange(len(q))})
        for (name, loss, seed), rows in table.groupby(["scenario", "loss", "seed"]):
            points = found[name]
            k = points.seeds.index(seed)
            at = rows["row"].to_numpy()
            d = q.cells.dataset[at]
            assert (q.x[d] == points.x[k]).all() and (q.y[d] == points.y[k]).all(), (name, seed)
            kwargs = loss_kwargs(p, loss)
            (found_set,) = minimiser.sets(loss, kwargs, points.x[k][None], points.y[k][None])
            want = polygon.widen(polygon.padded([found_set]), q.target.shape[1])
            np.testing.assert_allclose(q.target[at], np.repeat(want, len(at), axis=0), atol=0)
            if len(found_set) == 1:
                w, b = minimiser.minimiser(loss, kwargs, points.x[k], points.y[k])
                np.testing.assert_allclose(found_set, [[w, b]], rtol=0, atol=TARGET_ABS)


def grid_settings(p: params.Params) -> dict[tuple[str, str, str], dict[str, float]]:
    """The float settings of each (loss, optimizer, clip) of the headline grid's cells."""
    cells = grid.cells(p.train)
    table = st.grid_cells(cells)
    names = [k for k in table.settings if k != "lr"]  # the configuration's own
    return {
        (c.loss, c.optimizer, c.clip): {k: table.settings[k][i] for k in names}
        for i, c in enumerate(cells)
    }


# --- the lr grids -------------------------------------------------------------------
def test_lr_grid_of_the_committed_params_is_26_points_5_per_decade(
    committed: params.Params,
) -> None:
    """1e-4 to 10 at 5 per decade: 26 points, each 10^(1/5) times the one before."""
    lrs = rates.lr_grid(committed.study.lr)

    assert len(lrs) == 26
    assert lrs[0] == 1e-4 and lrs[-1] == 10.0
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], 10 ** (1 / 5), rtol=1e-12)


def test_lr_grid_hits_every_decade_exactly(committed: params.Params) -> None:
    """Every fifth point is a power of ten to the bit: 1e-3 == 0.001, 0.1, 1.0, 10.0."""
    lrs = rates.lr_grid(committed.study.lr)

    assert lrs[::5].tolist() == [1e-4, 0.001, 0.01, 0.1, 1.0, 10.0]


@pytest.mark.parametrize(
    ("low", "high", "per_decade", "expected"),
    [
        (0.05, 0.5, 3, [0.1, 10 ** (-2 / 3), 10 ** (-1 / 3)]),  # ends off the grid: inside only
        (1e-2, 1.0, 2, [0.01, 10**-1.5, 0.1, 10**-0.5, 1.0]),
        (0.3, 40.0, 1, [1.0, 10.0]),
    ],
)
def test_lr_grid_keeps_the_powers_inside_low_high(
    low: float, high: float, per_decade: int, expected: list[float]
) -> None:
    """The grid is 10^(k / per_decade) for exactly the k with the value in [low, high]."""
    g = params.LrGrid(low=low, high=high, per_decade=per_decade, near_edge=[])

    lrs = rates.lr_grid(g)

    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def closed_edge(p: params.Params, optimizer: str, lam: float) -> float:
    """2 / L, 2 (1 + mu) / ((1 - tau) L) and 2 (1 + mu) / ((1 + 2 mu) L), L = lam + wd."""
    kw = getattr(p.train.optimizers, optimizer).model_dump()
    mu, tau = kw.get("momentum", 0.0), kw.get("dampening", 0.0)
    factor = {"sgd": 2.0, "momentum": 2 * (1 + mu) / (1 - tau)}.get(
        optimizer, 2 * (1 + mu) / (1 + 2 * mu)
    )
    return factor / (lam + kw["weight_decay"])


def eigvalsh_edge(p: params.Params, optimizer: str, x: np.ndarray) -> float:
    """The edge of `optimizer` on MSE from numpy.linalg.eigvalsh of (2/n) X^T X, X = [x, 1]."""
    X = np.stack([x, np.ones_like(x)], axis=1)
    return closed_edge(p, optimizer, np.linalg.eigvalsh(2 / len(x) * X.T @ X).max())


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.5])
def test_mse_edge_is_the_closed_form_of_eigvalsh(
    raw_params: dict, optimizer: str, weight_decay: float
) -> None:
    """mse_edge is the closed-form edge of eigvalsh((2/n) X^T X), weight decay included."""
    raw = copy.deepcopy(raw_params)
    raw["train"]["optimizers"][optimizer]["weight_decay"] = weight_decay
    p = params.parse(raw)

    for name, points in study_data(p).items():
        got = rates.mse_edge(p.train, optimizer, points.x[0])  # type: ignore[arg-type]

        assert got == pytest.approx(eigvalsh_edge(p, optimizer, points.x[0]), rel=EDGE_REL), name


def test_mse_edge_does_not_depend_on_the_targets(committed: params.Params) -> None:
    """MSE's Hessian has no y in it: the edge of noisy's seeds (same x) is one number."""
    x = study_data(committed)["noisy"].x

    edges = {rates.mse_edge(committed.train, "sgd", row) for row in x}

    assert len(edges) == 1


def test_lrs_hold_the_grid_the_default_and_the_near_edge_fractions(
    committed: params.Params,
) -> None:
    """lrs: the log grid, the default and (gradient descent) near_edge x mse_edge, sorted."""
    x = study_data(committed)["noisy"].x[0]
    g = rates.lr_grid(committed.study.lr)

    for optimizer in committed.study.optimizers:
        lrs = rates.lrs(committed, optimizer, x)

        extra = {OPTIMIZERS[optimizer].default_lr}
        if optimizer in ("sgd", "momentum", "nesterov"):
            edge = rates.mse_edge(committed.train, optimizer, x)
            extra |= {f * edge for f in committed.study.lr.near_edge}
            assert edge == pytest.approx(eigvalsh_edge(committed, optimizer, x), rel=EDGE_REL)
        assert set(lrs.tolist()) == set(g.tolist()) | extra, optimizer
        assert (np.diff(lrs) > 0).all(), optimizer


# --- the tune part ---------------------------------------------------------------------
def test_tune_cells_are_configurations_x_lrs_x_tuning_seeds(committed: params.Params) -> None:
    """Tune cells: every configuration x its optimizer's lrs x tuning seed, each once."""
    s = committed.study
    found = study_data(committed)

    table = labels(st.tune_parts(committed, found))

    groups = table.groupby(["scenario", "loss", "optimizer", "clip"])
    expected = 0
    for name in s.scenarios:
        for loss in s.losses:
            for optimizer in s.optimizers:
                lrs = rates.lrs(committed, optimizer, found[name].x[0])
                expected += len(lrs) * len(s.clips) * len(s.seeds.tune)
                for clip in s.clips:
                    rows = groups.get_group((name, loss, optimizer, clip))
                    got = sorted(zip(rows["lr"], rows["seed"], strict=True))
                    assert got == sorted((lr, t) for lr in lrs for t in s.seeds.tune)
    assert len(table) == expected
    assert groups.ngroups == len(s.scenarios) * len(s.losses) * len(s.optimizers) * len(s.clips)


def test_tune_cells_train_on_their_data_toward_their_loss_minimiser(
    committed: params.Params,
) -> None:
    """Each tune cell trains on its scenario and seed's data, toward its loss's minimiser."""
    found = study_data(committed)

    parts = st.tune_parts(committed, found)

    check_data_and_targets(committed, parts, found)


def test_tune_cells_have_their_configuration_settings_and_scenario_labels(
    committed: params.Params,
) -> None:
    """Tune cells carry the grid cell's settings, their scenario's line and its tol as a
    distance: tol times the line's size (0.005 x |(2, 0)| = 0.01 by default)."""
    s = committed.study
    settings = grid_settings(committed)

    for q in st.tune_parts(committed, study_data(committed)):
        keys = zip(q.labels["loss"], q.labels["optimizer"], q.labels["clip"], strict=True)
        for i, key in enumerate(keys):
            for k, v in settings[key].items():
                assert q.cells.settings[k][i] == v or np.isnan(v), (key, k)
        scenario = [committed.scenarios[n] for n in q.labels["scenario"]]
        lines = [
            (2.0, 0.0) if sc.kind == "tutorial" else (sc.slope, sc.intercept) for sc in scenario
        ]
        assert q.line.tolist() == [list(line) for line in lines]
        want = [sc.tol * np.hypot(*line) for sc, line in zip(scenario, lines, strict=True)]
        assert q.tol.tolist() == want
        assert (q.part, q.steps, q.dtype, q.start) == ("tune", s.steps, s.dtype, None)
        assert np.isnan(q.theory_lr).all()


def test_tune_parts_merge_scenarios_of_one_shape(committed: params.Params) -> None:
    """Committed: one part per number of points (3, 20, 40), scenarios in study order."""
    parts = st.tune_parts(committed, study_data(committed))

    shapes = [(q.x.shape[1], q.batch_size) for q in parts]
    scenario_lists = [list(dict.fromkeys(q.labels["scenario"])) for q in parts]
    assert shapes == [(3, 0), (20, 0), (40, 4)]
    assert scenario_lists == [
        ["tutorial"],
        ["noisy", "outliers10", "outliers33", "wide"],
        ["heavy"],
    ]


def test_a_minibatch_scenario_stays_apart_even_with_the_same_number_of_points(
    raw_params: dict,
) -> None:
    """A minibatch scenario is not merged with full-batch ones of the same n."""
    raw = copy.deepcopy(raw_params)
    raw["scenarios"]["heavy"]["n"] = 20
    p = params.parse(raw)

    parts = st.tune_parts(p, study_data(p))

    by_scenario = {tuple(dict.fromkeys(q.labels["scenario"])): q for q in parts}
    assert set(by_scenario) == {
        ("tutorial",),
        ("noisy", "outliers10", "outliers33", "wide"),
        ("heavy",),
    }
    assert by_scenario[("heavy",)].batch_size == 4
    assert by_scenario[("noisy", "outliers10", "outliers33", "wide")].batch_size == 0
    assert by_scenario[("heavy",)].x.shape[1] == 20


def test_merge_keeps_apart_parts_of_other_steps_or_dtype(committed: params.Params) -> None:
    """Two parts alike but for steps, or for dtype, are not merged; alike ones are, in order."""
    base = st.tune_parts(committed, study_data(committed))[0]

    merged = st.merge(
        [base, replace(base, steps=base.steps + 1), replace(base, dtype="float64"), base]
    )

    assert [(q.steps, q.dtype, len(q)) for q in merged] == [
        (base.steps, base.dtype, 2 * len(base)),
        (base.steps + 1, base.dtype, len(base)),
        (base.steps, "float64", len(base)),
    ]
    second = merged[0].cells.dataset[len(base) :]
    assert np.array_equal(second, base.cells.dataset + len(base.x))  # the stacked rows


# --- the report part ------------------------------------------------------------------
def tuned_lrs(p: params.Params) -> dict[str, float]:
    """A made-up tuned lr per configuration (one of them equal to its default)."""
    s = p.study
    names = [
        config_name(n, loss, o, c)
        for n in s.scenarios
        for loss in s.losses
        for o in s.optimizers
        for c in s.clips
    ]
    tuned = {name: 0.5 * 10 ** -(i % 4) + 1e-6 * i for i, name in enumerate(names)}
    tuned[names[0]] = OPTIMIZERS[s.optimizers[0]].default_lr
    return tuned


def test_report_cells_are_each_configuration_at_its_tuned_and_default_lr(
    committed: params.Params,
) -> None:
    """Report cells: each configuration at its tuned and default lr, per reporting seed."""
    s = committed.study
    tuned = tuned_lrs(committed)

    table = labels(st.report_parts(committed, study_data(committed), tuned))

    table["config"] = [
        config_name(*r)
        for r in table[["scenario", "loss", "optimizer", "clip"]].itertuples(index=False)
    ]
    assert set(table["config"]) == set(tuned)
    for name, rows in table.groupby("config"):
        optimizer = name.split("-")[2]
        got = sorted(zip(rows["lr_kind"], rows["lr"], rows["seed"], strict=True))
        expected = [("default", OPTIMIZERS[optimizer].default_lr, t) for t in s.seeds.report]
        expected += [("tuned", tuned[name], t) for t in s.seeds.report]
        assert got == sorted(expected), name


def test_report_cells_train_on_their_data_toward_their_loss_minimiser(
    committed: params.Params,
) -> None:
    """Each report cell trains on its scenario and seed's data, toward its loss's minimiser."""
    found = study_data(committed)

    parts = st.report_parts(committed, found, tuned_lrs(committed))

    check_data_and_targets(committed, parts, found)


# --- the edge part --------------------------------------------------------------------
def zone_edge(p: params.Params, loss: str, optimizer: str, x: np.ndarray, y: np.ndarray) -> float:
    """The edge from numpy.linalg.eigvalsh of the loss's Hessian at its minimiser:
    (1/n) sum of l''(d) [x, 1][x, 1]^T, l'' = 2 (mse), 1 (huber) or 1/beta (smoothl1) in
    the quadratic zone |d| < kink, 0 outside, sech(d)^2 (logcosh), 12 d^2 (quartic),
    cosh(d) (cosh)."""
    kw = loss_kwargs(p, loss)
    w, b = minimiser.minimiser(loss, kw, x, y)  # type: ignore[arg-type]
    d = np.abs(w * x + b - y)
    if loss == "mse":
        curv = np.full_like(x, 2.0)
    elif loss == "huber":
        curv = (d < kw["delta"]).astype(np.float64)
    elif loss == "logcosh":
        curv = 1.0 / np.cosh(d) ** 2
    elif loss == "quartic":
        curv = 12 * d**2
    elif loss == "cosh":
        curv = np.cosh(d)
    else:
        curv = (d < kw["beta"]) / kw["beta"]
    X = np.stack([x, np.ones_like(x)], axis=1)
    return closed_edge(p, optimizer, np.linalg.eigvalsh((X.T * curv) @ X / len(x)).max())


def test_edge_cells_are_gradient_descent_on_the_quadratic_losses(
    committed: params.Params,
) -> None:
    """Edge cells: scenario x loss with curvature at its minimiser (all but L1) x
    sgd/momentum/nesterov x clip, 21 lrs, float64."""
    s, e = committed.study, committed.study.stability

    parts = st.edge_parts(committed, study_data(committed))

    table = labels(parts)
    configs = set(
        table[["scenario", "loss", "optimizer", "clip"]].itertuples(index=False, name=None)
    )
    assert configs == {
        (n, loss, o, c)
        for n in s.scenarios
        for loss in ("mse", "huber", "smoothl1", "logcosh")
        for o in ("sgd", "momentum", "nesterov")
        for c in s.clips
    }
    assert len(table) == 21 * len(configs)
    assert set(table["seed"]) == {s.seeds.report[0]}
    for q in parts:
        assert (q.part, q.dtype, q.batch_size, q.steps) == ("edge", "float64", 0, e.steps)
        assert (q.tol == e.tol).all()


def test_edge_lrs_are_theory_lr_times_1_plus_k_step(committed: params.Params) -> None:
    """Each configuration's lrs are theory_lr * (1 + k step), k = -span/step .. span/step."""
    e = committed.study.stability
    k = np.arange(-10, 11)  # span 0.1, step 0.01

    for q in st.edge_parts(committed, study_data(committed)):
        table = pd.DataFrame({**q.labels, "lr": q.cells.lr, "theory": q.theory_lr})
        for key, rows in table.groupby(["scenario", "loss", "optimizer", "clip"]):
            theory = rows["theory"].to_numpy()
            assert (theory == theory[0]).all(), key
            np.testing.assert_allclose(
                np.sort(rows["lr"].to_numpy()) / theory[0], 1 + k * e.step, rtol=1e-12
            )


def test_edge_theory_lr_is_the_closed_form_at_the_minimiser(committed: params.Params) -> None:
    """theory_lr is the closed-form edge from eigvalsh of the Hessian at the minimiser."""
    found = study_data(committed)
    seed = committed.study.seeds.report[0]

    for q in st.edge_parts(committed, found):
        table = pd.DataFrame({**q.labels, "theory": q.theory_lr})
        for (name, loss, optimizer), rows in table.groupby(["scenario", "loss", "optimizer"]):
            k = found[name].seeds.index(seed)
            x, y = found[name].x[k], found[name].y[k]
            expected = zone_edge(committed, loss, optimizer, x, y)

            assert rows["theory"].to_numpy() == pytest.approx(expected, rel=EDGE_REL), name


@pytest.fixture
def far_losses(raw_params: dict) -> params.Params:
    """The committed study with the (L0, L1)-smooth losses instead of its own."""
    raw = copy.deepcopy(raw_params)
    raw["study"]["losses"] = ["quartic", "cosh"]
    return params.parse(raw)


def test_quartic_and_cosh_cells_train_toward_their_minimiser_on_every_scenario(
    far_losses: params.Params,
) -> None:
    """With quartic and cosh in the study, each tuning cell trains on its data toward
    its loss's minimiser there (Newton's, on every scenario and seed: heavy-tailed noise,
    outliers, large |x| and the tutorial's exact fit)."""
    found = study_data(far_losses)

    parts = st.tune_parts(far_losses, found)

    assert set(labels(parts)["loss"]) == {"quartic", "cosh"}
    check_data_and_targets(far_losses, parts, found)


def test_quartic_and_cosh_edges_are_the_closed_form_but_quartics_exact_fit(
    far_losses: params.Params,
) -> None:
    """Edge cells of quartic and cosh: theory_lr from eigvalsh of the Hessian at the
    minimiser, on every scenario but quartic's on the tutorial's y = 2x, where every error
    and so its curvature is 0 (an infinite edge: no cells, as for L1)."""
    found = study_data(far_losses)
    seed = far_losses.study.seeds.report[0]

    parts = st.edge_parts(far_losses, found)

    table = pd.concat([pd.DataFrame({**q.labels, "theory": q.theory_lr}) for q in parts])
    pairs = set(table[["scenario", "loss"]].itertuples(index=False, name=None))
    every = {(n, loss) for n in far_losses.study.scenarios for loss in ("quartic", "cosh")}
    assert pairs == every - {("tutorial", "quartic")}
    for (name, loss, optimizer), rows in table.groupby(["scenario", "loss", "optimizer"]):
        k = found[name].seeds.index(seed)
        expected = zone_edge(far_losses, loss, optimizer, found[name].x[k], found[name].y[k])
        assert rows["theory"].to_numpy() == pytest.approx(expected, rel=EDGE_REL), name


def test_edge_cells_start_within_START_of_their_minimiser(committed: params.Params) -> None:
    """Edge cells start off their minimiser by more than tol, at most START relative."""
    found = study_data(committed)
    tol = committed.study.stability.tol

    parts = st.edge_parts(committed, found)

    for q in parts:
        assert q.start is not None
        assert (q.target == q.target[:, :1]).all()  # curved losses: a point
        off = np.abs(q.start - q.target[:, 0])
        assert (off <= st.START * np.maximum(np.abs(q.target[:, 0]), 1.0) * (1 + 1e-9)).all()
        assert (np.hypot(*off.T) > tol).all()
    seed = committed.study.seeds.report[0]
    check_data_and_targets(
        committed,
        parts,
        {
            n: scenarios.Points(
                [seed], p.x[[p.seeds.index(seed)]], p.y[[p.seeds.index(seed)]], p.line
            )
            for n, p in found.items()
        },
    )


# --- the twin part --------------------------------------------------------------------
USED_BY = {"amsgrad": ("adam", "adamw"), "centered": ("rmsprop",)}  # flags only some read


def test_twin_cells_are_the_headline_grid_cells_exactly(committed: params.Params) -> None:
    """Twin cells have the grid cells' settings, names, steps, dtype and points."""
    cells = grid.cells(committed.train)
    x, y = data.points(committed.generate)

    part = st.twin_part(committed, cells, x, y)

    expected = st.grid_cells(cells)
    optimizer = np.array([c.optimizer for c in cells])
    columns = {
        **expected.settings,
        **{k: getattr(expected, k) for k in ("loss", "optimizer", "clip", "seed", "dataset")},
    }
    for name, want in columns.items():
        got = part.cells.settings[name] if name in expected.settings else getattr(part.cells, name)
        used = np.isin(optimizer, USED_BY.get(name, optimizer))
        assert np.array_equal(got[used], want[used], equal_nan=True), name
    assert part.labels["name"].tolist() == [c.name for c in cells]
    assert (part.part, part.steps, part.dtype) == (
        "twin",
        committed.train.steps,
        committed.train.dtype,
    )
    assert np.array_equal(part.x, x[None]) and np.array_equal(part.y, y[None])


def test_twin_cells_train_as_the_grid_cells_do(committed: params.Params) -> None:
    """Twin cells and from_grid's train to the same bits."""
    # they differ only in flags a cell does not read (amsgrad, centered: 0 vs nan)
    import torch

    cells = grid.cells(committed.train)
    x, y = data.points(committed.generate)
    part = st.twin_part(committed, cells, x, y)

    a = regression.train(part.cells, part.x, part.y, 100, torch.float32)
    b = regression.train(st.grid_cells(cells), x, y, 100, torch.float32)

    for f in ("final_weight", "final_bias", "final_loss", "max_grad_norm", "clip_fraction"):
        assert np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True), f


def test_twin_targets_are_each_loss_minimiser_on_the_grid_points(committed: params.Params) -> None:
    """On the tutorial's points every loss's minimiser is y = 2x exactly: target (2, 0)."""
    cells = grid.cells(committed.train)
    x, y = data.points(committed.generate)

    part = st.twin_part(committed, cells, x, y)

    assert committed.generate.preset == "tutorial"
    assert part.target.tolist() == [[[2.0, 0.0]] * part.target.shape[1]] * len(cells)
