"""Oracle tests of the reference engine: every step of torch.optim, as train_cell runs it,
against the NumPy rules in tests/helpers/optimizers_numpy.py fed closed-form gradients.

All cells run in float64, so torch and NumPy differ only by rounding: 50 steps agree to
rel 1e-9 / abs 1e-12, while a wrong rule (checked below to be caught) is off by > 1e-6.
"""

import dataclasses
import json
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from pipeline import grid, params
from pipeline.grid import closed_form, data, reference
from pipeline.grid import trace as steps
from pipeline.optimizers import OPTIMIZERS
from pipeline.params import LossName, OptimizerName
from tests.helpers import optimizers_numpy as oracle
from tests.optimizers.test_adam import Adam
from tests.optimizers.test_sgd import SGD

XS = list(data.TUTORIAL_X)  # the tutorial's points: x = 1, 2, 3 and y = 2x
YS = [data.TUTORIAL_LINE[0] * x for x in XS]
X = torch.tensor(XS, dtype=torch.float64).reshape(-1, 1)
Y = torch.tensor(YS, dtype=torch.float64).reshape(-1, 1)
STEPS = 50
RTOL, ATOL = 1e-9, 1e-12  # float64 both sides; rounding grows a little over 50 steps
GAP = 1e-6  # a wrong rule is off by at least this: 1000x the replay's tolerance
LOSSES: list[LossName] = ["mse", "huber"]  # huber: its linear part is reached on step 1

Options = dict[str, float | bool | list[float]]
# Each optimizer with its committed kwargs ({}), then each option changed from them: the
# variants its oracle test (tests/optimizers/test_<name>.py) lists.
VARIANTS: list[tuple[OptimizerName, Options]] = oracle.variants()
CHANGED = [(name, options) for name, options in VARIANTS if options]


def variant_id(variant: tuple[OptimizerName, Options]) -> str:
    name, options = variant
    return "-".join([name, *(f"{k}={v}" for k, v in options.items())]) or name


def make_cell(
    committed: params.Params,
    loss: LossName,
    optimizer: OptimizerName,
    options: Options | None = None,
    clip: params.ClipName = "none",
    clip_kwargs: dict[str, float | str] | None = None,
) -> grid.Cell:
    """The committed grid's cell for loss x optimizer, in float64 for STEPS steps, with
    `options` over its committed optimizer kwargs and the given clipping."""
    base = next(
        c
        for c in grid.cells(committed.train)
        if (c.loss, c.optimizer, c.clip) == (loss, optimizer, "none")
    )
    return dataclasses.replace(
        base,
        dtype="float64",
        steps=STEPS,
        optimizer_kwargs={**base.optimizer_kwargs, **(options or {})},
        clip=clip,
        clip_kwargs=dict(clip_kwargs or {}),
    )


def gradient_of(cell: grid.Cell) -> Callable[[oracle.Array], oracle.Array]:
    """theta -> (dL/dw, dL/db) of the cell's loss on the tutorial's points, in closed form."""

    def gradient(theta: oracle.Array) -> oracle.Array:
        kwargs: dict[str, float] = cell.loss_kwargs  # type: ignore[assignment]  # params.py: floats
        g = closed_form.gradients(cell.loss, kwargs, theta[0], theta[1], XS, YS)
        return np.array([g.weight, g.bias])

    return gradient


def replay(cell: grid.Cell, trace: steps.Trace, rule: oracle.Rule | None = None) -> oracle.Replay:
    """The cell's steps in the oracle (its own rule unless `rule`), from the trace's start,
    with the rule's state under torch's names."""
    if rule is None:
        rule = oracle.make(cell.optimizer, cell.optimizer_kwargs)
    settings: dict[str, float | str] = cell.clip_kwargs  # type: ignore[assignment]  # params.py
    start = np.array(trace.initial)
    state = oracle.states()[cell.optimizer]
    return oracle.replay(rule, cell.clip, settings, start, gradient_of(cell), cell.steps, state)


def column(trace: steps.Trace, *names: str) -> np.ndarray:
    """The trace's columns `names`, one row per step."""
    return np.array([[getattr(row, n) for n in names] for row in trace.rows])


def thetas(trace: steps.Trace) -> np.ndarray:
    return column(trace, "weight", "bias")


def train(cell: grid.Cell) -> steps.Trace:
    """train_cell on the tutorial's points; every step must be finite (none diverge here)."""
    trace = reference.train_cell(cell, X, Y)
    assert trace.diverged_step is None and len(trace.rows) == STEPS
    return trace


def test_variants_cover_every_optimizer_and_option(committed: params.Params) -> None:
    """VARIANTS hold every optimizer of the grid as committed, and change each kwarg once."""
    sections = committed.train.optimizers.model_dump()

    names = {name for name, _ in VARIANTS}
    changed = {
        name: {k for n, opts in VARIANTS if n == name for k, v in opts.items() if v != section[k]}
        for name, section in sections.items()
    }

    assert names == set(committed.train.grid.optimizers) == set(OPTIMIZERS)
    assert all((name, {}) in VARIANTS for name in names)
    assert changed == {name: set(section) for name, section in sections.items()}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize(("optimizer", "options"), VARIANTS, ids=map(variant_id, VARIANTS))
def test_every_step_follows_the_documented_rule(
    committed: params.Params, loss: LossName, optimizer: OptimizerName, options: Options
) -> None:
    """Gradient, weight and bias of each of 50 steps equal the oracle's (rel 1e-9, abs 1e-12)."""
    cell = make_cell(committed, loss, optimizer, options)

    trace = train(cell)
    want = replay(cell, trace)

    got_grads = column(trace, "grad_weight", "grad_bias")
    np.testing.assert_allclose(got_grads, want.grads, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(thetas(trace), want.thetas, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("optimizer", "options"), VARIANTS, ids=map(variant_id, VARIANTS))
def test_every_step_records_the_optimizer_state_of_the_documented_rule(
    committed: params.Params, optimizer: OptimizerName, options: Options
) -> None:
    """After each step the trace holds every state vector torch.optim keeps per parameter
    (momentum_buffer, exp_avg, exp_avg_sq, ...), named `<key>_weight` and `<key>_bias`,
    equal to the oracle rule's same vector (rel 1e-9, abs 1e-12); and no other (the
    oracle's vectors an option switches off, such as amsgrad's max, stay zero)."""
    cell = make_cell(committed, "huber", optimizer, options)

    trace = train(cell)
    want = replay(cell, trace)

    used = [k for k, vectors in want.states.items() if np.any(vectors != 0)]
    expected = [steps.state_column(k, p) for k in used for p in steps.PARAMETERS]
    assert sorted(trace.state_columns) == sorted(expected)
    recorded = np.array(trace.states)
    for key in used:
        vectors = want.states[key]
        at = [trace.state_columns.index(steps.state_column(key, p)) for p in steps.PARAMETERS]
        np.testing.assert_allclose(recorded[:, at], vectors, rtol=RTOL, atol=ATOL, err_msg=key)


@pytest.mark.parametrize(("optimizer", "options"), CHANGED, ids=map(variant_id, CHANGED))
def test_the_replay_would_catch_an_option_ignored(
    committed: params.Params, optimizer: OptimizerName, options: Options
) -> None:
    """Each changed option moves the trajectory by > 1e-6 from the committed kwargs' rule:
    an option torch dropped (or amsgrad's max never binding) would fail the replay."""
    cell = make_cell(committed, "mse", optimizer, options)
    committed_rule = oracle.make(optimizer, make_cell(committed, "mse", optimizer).optimizer_kwargs)

    trace = train(cell)
    without = replay(cell, trace, committed_rule)

    assert np.max(np.abs(thetas(trace) - without.thetas)) > GAP


def test_the_replay_would_catch_nesterov_as_plain_momentum(committed: params.Params) -> None:
    """The nesterov cell's steps differ by > 1e-6 from SGD momentum without Nesterov."""
    cell = make_cell(committed, "mse", "nesterov")
    plain = SGD(**cell.optimizer_kwargs, nesterov=False)  # type: ignore[arg-type]

    trace = train(cell)
    want = replay(cell, trace, plain)

    assert np.max(np.abs(thetas(trace) - want.thetas)) > GAP


@pytest.mark.parametrize("weight_decay", [0.01, 0.3])  # the committed one, a large one
def test_the_replay_would_catch_adamw_as_adam(
    committed: params.Params, weight_decay: float
) -> None:
    """The adamw cell's steps differ by > 1e-6 from Adam's rule with L2 weight decay."""
    cell = make_cell(committed, "mse", "adamw", {"weight_decay": weight_decay})
    coupled = Adam(**cell.optimizer_kwargs, decoupled=False)  # type: ignore[arg-type]

    trace = train(cell)
    want = replay(cell, trace, coupled)

    assert np.max(np.abs(thetas(trace) - want.thetas)) > GAP


def test_the_replay_would_catch_dampening_on_the_first_step(committed: params.Params) -> None:
    """With dampening 0.5, the momentum cell differs by > 1e-6 from a rule whose buffer
    starts at 0 (so b_1 = (1 - dampening) g_1 instead of torch's b_1 = g_1)."""
    cell = make_cell(committed, "mse", "momentum", {"dampening": 0.5})
    damped = SGD(**cell.optimizer_kwargs, buf=np.zeros(2))  # type: ignore[arg-type]

    trace = train(cell)
    want = replay(cell, trace, damped)

    assert np.max(np.abs(thetas(trace) - want.thetas)) > GAP


# Thresholds below the tutorial's gradients (|g| up to 8.2 at the start): clipping acts on
# some steps and not on others (checked), with the optimizer's momentum in the mix.
CLIPPING: list[tuple[params.ClipName, dict[str, float | str]]] = [
    ("norm", {"max_norm": 1.0, "norm_type": "inf"}),
    ("norm", {"max_norm": 1.0, "norm_type": 2.0}),
    ("handnorm", {"max_norm": 1.0, "norm_type": "inf"}),
    ("handnorm", {"max_norm": 1.0, "norm_type": 2.0}),
    ("value", {"clip_value": 0.5}),
    ("handvalue", {"clip_value": 0.5}),
]


def clipping_id(case: tuple[params.ClipName, dict[str, float | str]]) -> str:
    return "-".join([case[0], *map(str, case[1].values())])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize(("clip", "settings"), CLIPPING, ids=map(clipping_id, CLIPPING))
def test_clipped_gradients_follow_the_clipping_rule(
    committed: params.Params,
    clip: params.ClipName,
    settings: dict[str, float | str],
    optimizer: OptimizerName,
) -> None:
    """Each step's recorded clipped gradient is the rule applied to the closed-form gradient
    at the step's parameters, `clipped` says whether it changed, and the oracle's replay
    with clipping gives the same weights (all rel 1e-9, abs 1e-12)."""
    cell = make_cell(committed, "mse", optimizer, clip=clip, clip_kwargs=settings)
    gradient = gradient_of(cell)

    trace = train(cell)
    before = np.vstack([trace.initial, thetas(trace)[:-1]])  # the parameters of each step
    raw = np.array([gradient(theta) for theta in before])
    want = np.array([oracle.clip(clip, settings, g) for g in raw])
    replayed = replay(cell, trace)

    flags = column(trace, "clipped")[:, 0]
    np.testing.assert_allclose(column(trace, "grad_weight", "grad_bias"), raw, rtol=RTOL, atol=ATOL)
    got_clipped = column(trace, "clipped_grad_weight", "clipped_grad_bias")
    np.testing.assert_allclose(got_clipped, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(flags, np.any(want != raw, axis=1))
    assert 0 < flags.sum() < STEPS  # the threshold clips some steps, not all
    np.testing.assert_allclose(thetas(trace), replayed.thetas, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize(
    ("hand", "torch_clip", "settings"),
    [
        ("handnorm", "norm", {"max_norm": 1.0, "norm_type": "inf"}),
        ("handnorm", "norm", {"max_norm": 1.0, "norm_type": 2.0}),
        ("handvalue", "value", {"clip_value": 0.5}),
    ],
)
def test_hand_clipping_gives_torchs_trace(
    committed: params.Params,
    hand: params.ClipName,
    torch_clip: params.ClipName,
    settings: dict[str, float | str],
    optimizer: OptimizerName,
) -> None:
    """handnorm and handvalue record the same steps as norm and value (rel, abs 1e-12)."""
    by_hand = make_cell(committed, "mse", optimizer, clip=hand, clip_kwargs=settings)
    by_torch = dataclasses.replace(by_hand, clip=torch_clip)

    got, want = train(by_hand), train(by_torch)

    assert sum(row.clipped for row in want.rows) > 0  # the threshold clips
    np.testing.assert_allclose(
        column(got, *steps.HISTORY), column(want, *steps.HISTORY), rtol=1e-12, atol=1e-12
    )
    assert [r.clipped for r in got.rows] == [r.clipped for r in want.rows]


# --- float32, the grid's default dtype: the tutorial's own set-up --------------------------
X32 = torch.tensor([[1.0], [2.0], [3.0]])
Y32 = 2 * X32


def _cell(committed: params.Params, **changes: object) -> grid.Cell:
    """The first cell of the committed grid with some fields replaced."""
    cell = grid.cells(committed.train)[0]
    return grid.Cell(**{**cell.__dict__, **changes})


def _sgd_on_mse(committed: params.Params, lr: float, steps: int) -> grid.Cell:
    """The tutorial's set-up: MSELoss, plain SGD at `lr`, no clipping."""
    return _cell(
        committed,
        loss="mse",
        optimizer="sgd",
        clip="none",
        steps=steps,
        loss_kwargs={},
        optimizer_kwargs={"lr": lr, "weight_decay": 0.0},
        clip_kwargs={},
    )


def test_first_step_is_closed_form_sgd_on_mse(committed: params.Params) -> None:
    """Step 0 records MSE's closed-form gradient at the seed-42 weights and w - lr * g after."""
    cell = _sgd_on_mse(committed, lr=0.01, steps=1)
    trace = reference.train_cell(cell, X32, Y32)
    w, b = trace.initial
    x, y = X32.flatten().double(), Y32.flatten().double()
    residual = w * x + b - y
    grad_w, grad_b = (2 * residual * x).mean().item(), (2 * residual).mean().item()
    row = dict(zip(steps.COLUMNS, trace.rows[0], strict=True))
    assert row["loss"] == pytest.approx((residual**2).mean().item(), rel=1e-6)
    assert (row["grad_weight"], row["grad_bias"]) == pytest.approx((grad_w, grad_b), rel=1e-5)
    assert row["grad_norm"] == pytest.approx(math.hypot(grad_w, grad_b), rel=1e-5)
    assert (row["weight"], row["bias"]) == pytest.approx(
        (w - 0.01 * grad_w, b - 0.01 * grad_b), rel=1e-6
    )
    assert row["clipped"] == 0


def test_sgd_on_mse_recovers_y_equals_2x(committed: params.Params) -> None:
    """Plain SGD on MSE converges to weight 2, bias 0 on the tutorial's points."""
    cell = _sgd_on_mse(committed, lr=0.05, steps=3000)
    trace = reference.train_cell(cell, X32, Y32)
    assert trace.final() == pytest.approx((2.0, 0.0), abs=1e-4)
    assert trace.final_loss == pytest.approx(0.0, abs=1e-8)


def test_every_cell_of_a_seed_starts_from_the_same_weights(committed: params.Params) -> None:
    """All cells with seed 42 share torch.manual_seed(42)'s nn.Linear(1, 1) initial weights."""
    torch.manual_seed(42)
    fresh = torch.nn.Linear(1, 1)
    expected = (fresh.weight.item(), fresh.bias.item())
    cells = grid.cells(committed.train)[:5]
    assert {
        reference.train_cell(grid.Cell(**{**c.__dict__, "steps": 1}), X32, Y32).initial
        for c in cells
    } == {expected}


def test_training_is_bitwise_deterministic(committed: params.Params) -> None:
    """The same cell trained twice gives identical traces, bit for bit."""
    cell = _cell(committed, steps=50)
    first, second = reference.train_cell(cell, X32, Y32), reference.train_cell(cell, X32, Y32)
    assert first.rows == second.rows and first.final_loss == second.final_loss


def test_clipping_is_recorded_before_and_after(committed: params.Params) -> None:
    """With max_norm 0.1 every step clips: the norm recorded is pre-clip, the applied one 0.1."""
    cell = _cell(committed, clip="norm", steps=10, clip_kwargs={"max_norm": 0.1, "norm_type": 2.0})
    frame = steps.to_frame(reference.train_cell(cell, X32, Y32))
    assert frame["clipped"].eq(1).all()
    assert (frame["grad_norm"] > 0.1).all()
    applied = (
        frame["clipped_grad_weight"].astype(float) ** 2
        + frame["clipped_grad_bias"].astype(float) ** 2
    ) ** 0.5
    assert applied.to_numpy() == pytest.approx(0.1, rel=1e-5)


def test_divergence_stops_the_cell_and_keeps_finite_steps(committed: params.Params) -> None:
    """SGD with lr = 10 diverges: stopped at a step with a reason, every kept row finite."""
    cell = _sgd_on_mse(committed, lr=10.0, steps=500)
    trace = reference.train_cell(cell, X32, Y32)
    assert trace.diverged_step is not None and trace.diverged_reason in (
        "loss",
        "gradient",
        "parameters",
    )
    assert len(trace.rows) == trace.diverged_step < 500
    assert all(math.isfinite(v) for row in trace.rows for v in row)
    measures = steps.measures(trace, (2.0, 0.0))
    assert measures["diverged"] == 1 and measures["diverged_step"] == trace.diverged_step
    json.dumps(measures, allow_nan=False)  # no NaN/inf reaches the manifest
