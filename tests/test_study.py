"""The study's cells: the lr grids, the tune, report, edge and twin parts of the committed
params, checked against numpy, the minimisers and the headline grid (nothing trains)."""

import copy
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from pipeline import data, engine, grid, minimiser, params, scenarios, stability, study
from pipeline.configs import DEFAULT_LR, config_name

TARGET_ABS = 1e-12  # minimisers of one data set, computed alone or stacked with others
EDGE_REL = 1e-12  # an analytic edge: closed form vs numpy.linalg.eigvalsh


def study_data(p: params.Params) -> dict[str, scenarios.Points]:
    seeds = scenarios.study_seeds(p.study)
    return {n: scenarios.points(n, p.scenarios[n], seeds) for n in p.study.scenarios}


def labels(parts: list[study.Part]) -> pd.DataFrame:
    """Every cell of the parts: its labels, lr, seed, data row, target and part index."""
    return pd.concat(
        [
            pd.DataFrame(
                {
                    **q.labels,
                    "lr": q.cells.lr,
                    "seed": q.cells.seed,
                    "dataset": q.cells.dataset,
                    "target_w": q.target[:, 0],
                    "target_b": q.target[:, 1],
                    "index": i,
                }
            )
            for i, q in enumerate(parts)
        ],
        ignore_index=True,
    )


def loss_kwargs(p: params.Params, loss: str) -> dict[str, float]:
    return getattr(p.train.losses, loss).model_dump()


def check_data_and_targets(
    p: params.Params, parts: list[study.Part], found: dict[str, scenarios.Points]
) -> None:
    """Each cell trains on its scenario's data set of its seed, toward the minimiser of its
    loss on that data set (minimiser.minimiser of that one data set)."""
    for q in parts:
        table = pd.DataFrame({**q.labels, "seed": q.cells.seed, "row": np.arange(len(q))})
        for (name, loss, seed), rows in table.groupby(["scenario", "loss", "seed"]):
            points = found[name]
            k = points.seeds.index(seed)
            at = rows["row"].to_numpy()
            d = q.cells.dataset[at]
            assert (q.x[d] == points.x[k]).all() and (q.y[d] == points.y[k]).all(), (name, seed)
            w, b = minimiser.minimiser(loss, loss_kwargs(p, loss), points.x[k], points.y[k])
            np.testing.assert_allclose(q.target[at], [[w, b]] * len(at), rtol=0, atol=TARGET_ABS)


def grid_settings(p: params.Params) -> dict[tuple[str, str, str], dict[str, float]]:
    """The float settings of each (loss, optimizer, clip) of the headline grid's cells."""
    cells = grid.cells(p.train)
    table = engine.Cells.from_grid(cells)
    names = [f.name for f in fields(engine.Cells)[6:]]  # after lr: the configuration's own
    return {
        (c.loss, c.optimizer, c.clip): {k: getattr(table, k)[i] for k in names}
        for i, c in enumerate(cells)
    }


# --- the lr grids -------------------------------------------------------------------
def test_lr_grid_of_the_committed_params_is_26_points_5_per_decade(
    committed: params.Params,
) -> None:
    """1e-4 to 10 at 5 per decade: 26 points, each 10^(1/5) times the one before."""
    lrs = study.lr_grid(committed.study.lr)

    assert len(lrs) == 26
    assert lrs[0] == 1e-4 and lrs[-1] == 10.0
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], 10 ** (1 / 5), rtol=1e-12)


def test_lr_grid_hits_every_decade_exactly(committed: params.Params) -> None:
    """Every fifth point is a power of ten to the bit: 1e-3 == 0.001, 0.1, 1.0, 10.0."""
    lrs = study.lr_grid(committed.study.lr)

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

    lrs = study.lr_grid(g)

    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def eigvalsh_edge(p: params.Params, optimizer: str, x: np.ndarray) -> float:
    """The edge of `optimizer` on MSE from numpy.linalg.eigvalsh of (2/n) X^T X, X = [x, 1]:
    2 / L, 2 (1 + mu) / ((1 - tau) L) and 2 (1 + mu) / ((1 + 2 mu) L), L = lam_max + wd."""
    X = np.stack([x, np.ones_like(x)], axis=1)
    kw = getattr(p.train.optimizers, optimizer).model_dump()
    big = np.linalg.eigvalsh(2 / len(x) * X.T @ X).max() + kw["weight_decay"]
    mu, tau = kw.get("momentum", 0.0), kw.get("dampening", 0.0)
    factor = {"sgd": 2.0, "momentum": 2 * (1 + mu) / (1 - tau)}.get(
        optimizer, 2 * (1 + mu) / (1 + 2 * mu)
    )
    return factor / big


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.5])
def test_mse_edge_is_the_closed_form_of_eigvalsh(
    raw_params: dict, optimizer: str, weight_decay: float
) -> None:
    """mse_edge on every committed scenario's points is the edge of (2/n) X^T X's largest
    eigenvalue (numpy.linalg.eigvalsh), weight decay included."""
    raw = copy.deepcopy(raw_params)
    raw["train"]["optimizers"][optimizer]["weight_decay"] = weight_decay
    p = params.parse(raw)

    for name, points in study_data(p).items():
        got = study.mse_edge(p.train, optimizer, points.x[0])  # type: ignore[arg-type]

        assert got == pytest.approx(eigvalsh_edge(p, optimizer, points.x[0]), rel=EDGE_REL), name


def test_mse_edge_does_not_depend_on_the_targets(committed: params.Params) -> None:
    """MSE's Hessian has no y in it: the edge of noisy's seeds (same x) is one number."""
    x = study_data(committed)["noisy"].x

    edges = {study.mse_edge(committed.train, "sgd", row) for row in x}

    assert len(edges) == 1


def test_lrs_hold_the_grid_the_default_and_the_near_edge_fractions(
    committed: params.Params,
) -> None:
    """Each optimizer's lrs: the log grid, its library default and, for gradient descent,
    near_edge x mse_edge; sorted, each once, nothing else."""
    x = study_data(committed)["noisy"].x[0]
    g = study.lr_grid(committed.study.lr)

    for optimizer in committed.study.optimizers:
        lrs = study.lrs(committed, optimizer, x)

        extra = {DEFAULT_LR[optimizer]}
        if optimizer in ("sgd", "momentum", "nesterov"):
            edge = study.mse_edge(committed.train, optimizer, x)
            extra |= {f * edge for f in committed.study.lr.near_edge}
            assert edge == pytest.approx(eigvalsh_edge(committed, optimizer, x), rel=EDGE_REL)
        assert set(lrs.tolist()) == set(g.tolist()) | extra, optimizer
        assert (np.diff(lrs) > 0).all(), optimizer


# --- the tune part ---------------------------------------------------------------------
def test_tune_cells_are_configurations_x_lrs_x_tuning_seeds(committed: params.Params) -> None:
    """Every configuration has each of its optimizer's lrs (on its scenario's points) for
    each tuning seed exactly once, and nothing else is trained."""
    s = committed.study
    found = study_data(committed)

    table = labels(study.tune_parts(committed, found))

    expected = 0
    for name in s.scenarios:
        for loss in s.losses:
            for optimizer in s.optimizers:
                lrs = study.lrs(committed, optimizer, found[name].x[0])
                expected += len(lrs) * len(s.clips) * len(s.seeds.tune)
                for clip in s.clips:
                    rows = table[
                        (table["scenario"] == name)
                        & (table["loss"] == loss)
                        & (table["optimizer"] == optimizer)
                        & (table["clip"] == clip)
                    ]
                    got = sorted(zip(rows["lr"], rows["seed"], strict=True))
                    assert got == sorted((lr, t) for lr in lrs for t in s.seeds.tune)
    assert len(table) == expected


def test_tune_cells_train_on_their_data_toward_their_loss_minimiser(
    committed: params.Params,
) -> None:
    """Each tune cell's data row is its scenario and seed's data set, and its target the
    minimiser of its loss there."""
    found = study_data(committed)

    parts = study.tune_parts(committed, found)

    check_data_and_targets(committed, parts, found)


def test_tune_cells_have_their_configuration_settings_and_scenario_labels(
    committed: params.Params,
) -> None:
    """Each tune cell's optimizer, loss and clip settings are the headline grid's cell of
    the same names; its tol, line, steps and dtype its scenario's and the study's."""
    s = committed.study
    settings = grid_settings(committed)

    for q in study.tune_parts(committed, study_data(committed)):
        keys = zip(q.labels["loss"], q.labels["optimizer"], q.labels["clip"], strict=True)
        for i, key in enumerate(keys):
            for k, v in settings[key].items():
                assert getattr(q.cells, k)[i] == v or np.isnan(v), (key, k)
        scenario = [committed.scenarios[n] for n in q.labels["scenario"]]
        assert q.tol.tolist() == [sc.tol for sc in scenario]
        lines = [(2.0, 0.0) if sc.kind == "tutorial" else (sc.slope, sc.intercept) for sc in scenario]
        assert q.line.tolist() == [list(line) for line in lines]
        assert (q.part, q.steps, q.dtype, q.start) == ("tune", s.steps, s.dtype, None)
        assert np.isnan(q.theory_lr).all()


def test_tune_parts_merge_scenarios_of_one_shape(committed: params.Params) -> None:
    """Committed: one part per number of points (3, 20, 40), scenarios in study order."""
    parts = study.tune_parts(committed, study_data(committed))

    shapes = [(q.x.shape[1], q.batch_size) for q in parts]
    scenario_lists = [list(dict.fromkeys(q.labels["scenario"])) for q in parts]
    assert shapes == [(3, 0), (20, 0), (40, 4)]
    assert scenario_lists == [["tutorial"], ["noisy", "outliers10", "outliers33", "wide"], ["heavy"]]


def test_a_minibatch_scenario_stays_apart_even_with_the_same_number_of_points(
    raw_params: dict,
) -> None:
    """heavy with n = 20 like noisy but batch_size 4: its own part, the full-batch ones merged;
    every part's cells share n, batch size, steps and dtype."""
    raw = copy.deepcopy(raw_params)
    raw["scenarios"]["heavy"]["n"] = 20
    p = params.parse(raw)

    parts = study.tune_parts(p, study_data(p))

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
    found = study_data(committed)
    base = study.tune_parts(committed, {"noisy": found["noisy"]} | found)[1]
    from dataclasses import replace

    merged = study.merge([base, replace(base, steps=base.steps + 1), replace(base, dtype="float64"), base])

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
    tuned[names[0]] = DEFAULT_LR[s.optimizers[0]]
    return tuned


def test_report_cells_are_each_configuration_at_its_tuned_and_default_lr(
    committed: params.Params,
) -> None:
    """Every configuration: its tuned lr (lr_kind "tuned") and its library default (lr_kind
    "default"), each for every reporting seed once; no tuning seed."""
    s = committed.study
    tuned = tuned_lrs(committed)

    table = labels(study.report_parts(committed, study_data(committed), tuned))

    table["config"] = [config_name(*r) for r in table[["scenario", "loss", "optimizer", "clip"]].itertuples(index=False)]
    assert set(table["config"]) == set(tuned)
    for name, rows in table.groupby("config"):
        optimizer = name.split("-")[2]
        got = sorted(zip(rows["lr_kind"], rows["lr"], rows["seed"], strict=True))
        expected = [("default", DEFAULT_LR[optimizer], t) for t in s.seeds.report]
        expected += [("tuned", tuned[name], t) for t in s.seeds.report]
        assert got == sorted(expected), name


def test_report_cells_train_on_their_data_toward_their_loss_minimiser(
    committed: params.Params,
) -> None:
    """Each report cell's data row is its scenario and seed's data set, its target the
    minimiser of its loss there."""
    found = study_data(committed)

    parts = study.report_parts(committed, found, tuned_lrs(committed))

    check_data_and_targets(committed, parts, found)


# --- the edge part --------------------------------------------------------------------
def quadratic_zone_edge(p: params.Params, loss: str, optimizer: str, x: np.ndarray, y: np.ndarray) -> float:
    """The edge from numpy.linalg.eigvalsh of the loss's Hessian at its minimiser:
    (1/n) sum of l''(d) [x, 1][x, 1]^T, l'' = 2 (mse), 1 (huber) or 1/beta (smoothl1) in
    the quadratic zone |d| < kink, 0 outside."""
    kw = loss_kwargs(p, loss)
    w, b = minimiser.minimiser(loss, kw, x, y)
    d = w * x + b - y
    curv = {
        "mse": np.full_like(x, 2.0),
        "huber": (np.abs(d) < kw.get("delta", 0)).astype(float),
        "smoothl1": (np.abs(d) < kw.get("beta", 0)) / kw.get("beta", 1),
    }[loss]
    X = np.stack([x, np.ones_like(x)], axis=1)
    big = np.linalg.eigvalsh((X.T * curv) @ X / len(x)).max()
    return eigvalsh_edge(p, optimizer, x) * (eigvalsh_edge(p, "sgd", x) / (2 / big) if False else 1) if loss == "mse" else _edge_of(p, optimizer, big)


def _edge_of(p: params.Params, optimizer: str, big: float) -> float:
    kw = getattr(p.train.optimizers, optimizer).model_dump()
    mu, tau = kw.get("momentum", 0.0), kw.get("dampening", 0.0)
    factor = {"sgd": 2.0, "momentum": 2 * (1 + mu) / (1 - tau)}.get(
        optimizer, 2 * (1 + mu) / (1 + 2 * mu)
    )
    return factor / (big + kw["weight_decay"])
