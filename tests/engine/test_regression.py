"""The batched engine against the reference engine (torch.optim, one cell at a time), and
its determinism: a cell's bits do not depend on the batch it is trained in."""

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch

from pipeline import grid, params
from pipeline.engine import ops, regression
from pipeline.engine.cells import CLIP_NAMES, OPTIMIZER_NAMES, REGRESSION, Cells
from pipeline.engine.regression import REASONS
from pipeline.grid import reference
from pipeline.grid.trace import COLUMNS as trace_columns
from pipeline.grid.trace import Trace, measures
from pipeline.study.design import grid_cells
from tests.helpers.batch_checks import (
    assert_same_bits_alone_batched_or_permuted,
    optimizer_settings,
)

STEPS = 500
TUTORIAL = (np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 4.0, 6.0]]))
FINALS = ("final_loss", "final_weight", "final_bias", "max_grad_norm", "clip_fraction")


def _line_data(datasets: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """x = linspace(-2, 2, 20) and y = 2x + Gaussian noise, one noise draw per dataset."""
    x = np.linspace(-2.0, 2.0, 20)
    noise = np.random.default_rng(0).normal(0.0, 0.5, (datasets, 20))
    return np.tile(x, (datasets, 1)), 2.0 * x + noise


def _reference_rows(trace: Trace) -> np.ndarray:
    """The reference's kept steps as (steps, 9), columns regression.TRACE."""
    rows = [[getattr(r, c) for c in regression.TRACE] for r in trace.rows]
    return np.array(rows, dtype=np.float64).reshape(-1, len(regression.TRACE))


def _both(cells: list[grid.Cell], x: np.ndarray, y: np.ndarray, dataset: list[int] | None = None):
    """Each cell through the reference engine, and all of them through one batched call."""
    columns = grid_cells(cells)
    if dataset is not None:
        columns = dataclasses.replace(columns, dataset=np.array(dataset))
    rows = columns.dataset
    traces = [
        reference.train_cell(
            c, torch.tensor(x[d]).reshape(-1, 1), torch.tensor(y[d]).reshape(-1, 1)
        )
        for c, d in zip(cells, rows, strict=True)
    ]
    dtype = reference.DTYPES[cells[0].dtype]
    result = regression.train(columns, x, y, cells[0].steps, dtype, record=np.arange(len(cells)))
    return traces, result


def _assert_traces_agree(traces, result, rtol: float, atol: float) -> float:
    """Same kept steps, same divergence, every value within rtol/atol; the largest
    relative difference seen."""
    worst = 0.0
    for i, trace in enumerate(traces):
        expected = _reference_rows(trace)
        kept = len(expected)
        assert result.steps_run[i] == kept, trace.cell.name
        assert result.diverged_step[i] == (
            -1 if trace.diverged_step is None else trace.diverged_step
        )
        reason = trace.diverged_reason
        assert result.diverged_reason[i] == (
            -1 if reason is None else regression.REASONS.index(reason)
        )
        ours = result.trace[i, :kept].astype(np.float64)
        np.testing.assert_allclose(ours, expected, rtol=rtol, atol=atol, err_msg=trace.cell.name)
        assert np.isnan(result.trace[i, kept:]).all()  # the steps it did not keep
        scale = np.maximum(np.abs(expected), atol / rtol)
        worst = max(worst, float(np.max(np.abs(ours - expected) / scale, initial=0.0)))
    return worst


def _float64(cells: list[grid.Cell]) -> list[grid.Cell]:
    return [dataclasses.replace(c, dtype="float64") for c in cells]


def _variants(base: list[grid.Cell]) -> list[grid.Cell]:
    """Cells that take the branches the default grid does not: every optimizer setting,
    other norm types, hand clipping, other loss parameters, a diverging cell."""
    by_name = {c.name: c for c in base}

    def vary(name: str, suffix: str, seed: int = 42, clip: str | None = None, **kwargs):
        cell = by_name[name]
        changes = {k: v for k, v in kwargs.items() if k in cell.optimizer_kwargs}
        losses = {k: v for k, v in kwargs.items() if k in cell.loss_kwargs}
        clips = {k: v for k, v in kwargs.items() if k in cell.clip_kwargs}
        return dataclasses.replace(
            cell,
            name=f"{name}-{suffix}",
            seed=seed,
            clip=clip or cell.clip,
            optimizer_kwargs={**cell.optimizer_kwargs, **changes},
            loss_kwargs={**cell.loss_kwargs, **losses},
            clip_kwargs={**cell.clip_kwargs, **clips},
        )

    return [
        vary("mse-adam-none", "amsgrad", amsgrad=True),
        vary("huber-adamw-norm", "amsgrad", seed=7, amsgrad=True),
        vary("l1-adam-value", "decay", weight_decay=0.01),
        vary("mse-rmsprop-none", "centered", centered=True),
        vary("huber-rmsprop-none", "momentum", momentum=0.5),
        vary("l1-rmsprop-norm", "all", seed=3, centered=True, momentum=0.3, weight_decay=0.01),
        vary("mse-momentum-none", "dampening", dampening=0.3, weight_decay=0.01),
        vary("smoothl1-nesterov-value", "decay", weight_decay=0.02),
        vary("mse-sgd-none", "decay", weight_decay=0.05),
        vary("huber-adagrad-none", "all", lr_decay=0.01, initial_accumulator_value=0.1),
        vary("mse-adagrad-norm", "decay", seed=11, weight_decay=0.01, lr_decay=0.001),
        vary("mse-sgd-norm", "inf", norm_type="inf", max_norm=0.5),
        vary("l1-adam-norm", "p1.5", norm_type=1.5, max_norm=0.3),
        vary("huber-momentum-norm", "hand", clip="handnorm", norm_type=1.5),
        vary("mse-adam-value", "hand", clip="handvalue", clip_value=0.1),
        vary("smoothl1-sgd-none", "beta", beta=2.0),
        vary("huber-sgd-none", "delta", delta=0.3),
        vary("mse-sgd-none", "diverging", lr=10.0),
        vary("mse-momentum-none", "diverging", lr=10.0),
        vary("l1-sgd-none", "diverging", lr=1e308),  # the first step overflows the parameters
    ]


@pytest.fixture
def cells32(committed) -> list[grid.Cell]:
    return grid.cells(committed.train)


def test_default_grid_matches_torch_optim_in_float64(cells32) -> None:
    """Every step of every default cell (loss, gradients before and after clipping,
    parameters) agrees with torch.optim within 1e-9 relative, 1e-12 absolute."""
    traces, result = _both(_float64(cells32), *TUTORIAL)
    worst = _assert_traces_agree(traces, result, rtol=1e-9, atol=1e-12)
    assert worst < 1e-9


def test_variants_match_torch_optim_in_float64(cells32) -> None:
    """amsgrad, centered, momentum, dampening, weight decay, lr_decay, initial
    accumulators, inf and 1.5 norms, hand clipping and divergence agree too."""
    cells = _float64(_variants(cells32))
    traces, result = _both(cells, *TUTORIAL)
    _assert_traces_agree(traces, result, rtol=1e-9, atol=1e-12)
    diverged = {t.diverged_reason for t in traces if t.cell.name.endswith("diverging")}
    assert diverged == {"loss", "parameters"}


def test_several_datasets_match_torch_optim_in_float64(cells32) -> None:
    """Cells pointing at different datasets of 20 noisy points each agree with torch.optim."""
    cells = _float64(cells32[::5] + _variants(cells32)[:8])
    dataset = [i % 3 for i in range(len(cells))]
    traces, result = _both(cells, *_line_data(), dataset=dataset)
    _assert_traces_agree(traces, result, rtol=1e-9, atol=1e-12)


def test_default_grid_matches_torch_optim_in_float32(cells32) -> None:
    """In float32 (the default) the final metrics agree within 1e-4 relative, or both
    losses are below 1e-10; in fact every kept value is torch's own, bit for bit (all but
    grad_norm, which the reference computes in float64 with math.hypot)."""
    traces, result = _both(cells32, *TUTORIAL)
    optimum = (2.0, 0.0)
    for i, trace in enumerate(traces):
        expected = measures(trace, optimum)
        assert result.steps_run[i] == expected["steps_run"]
        if (expected["final_loss"] or 0.0) < 1e-10 and result.final_loss[i] < 1e-10:
            continue
        for name in FINALS:
            assert getattr(result, name)[i] == pytest.approx(expected[name], rel=1e-4), name
        exact = [c for c in range(len(regression.TRACE)) if regression.TRACE[c] != "grad_norm"]
        rows = _reference_rows(trace).astype(np.float32)
        np.testing.assert_array_equal(result.trace[i, :, exact].T, rows[:, exact])


def test_float32_variants_agree_on_final_metrics(cells32) -> None:
    """The variants' final metrics agree with torch.optim's in float32 too. Not compared:
    lr = 1e308, which torch refuses to convert to float32, and hand clipping: the
    engine clips as torch.nn.utils does, and clip.py's hand-written norm rounds its last
    bit differently; a float32 loss near its minimum turns a one-ulp difference in w
    into 1e-3 of itself (in float64 the hand cells agree within 1e-9)."""
    cells = [
        c
        for c in _variants(cells32)
        if float(c.optimizer_kwargs["lr"]) < 1e38 and not c.clip.startswith("hand")
    ]
    traces, result = _both(cells, *TUTORIAL)
    for i, trace in enumerate(traces):
        expected = measures(trace, (2.0, 0.0))
        assert result.steps_run[i] == expected["steps_run"], trace.cell.name
        loss = expected["final_loss"]
        if loss is None or (loss < 1e-10 and result.final_loss[i] < 1e-10):
            continue
        for name in FINALS:
            assert getattr(result, name)[i] == pytest.approx(expected[name], rel=1e-4), name


OWN_MODULES = ["logcosh", "quartic", "cosh"]  # losses torch.nn lacks: each its own module


@pytest.fixture
def own_cells(raw_params: dict) -> list[grid.Cell]:
    """Every optimizer under torch's clipping (none, norm, value) and each loss torch.nn
    lacks, at the grid's settings."""
    raw = copy.deepcopy(raw_params)
    raw["train"]["grid"].update(losses=OWN_MODULES, clips=["none", "norm", "value"])
    return grid.cells(params.parse(raw).train)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("offset", [0.0, 30.0], ids=["tutorial", "far"])
def test_losses_of_their_own_are_torch_optims_with_their_modules_bit_for_bit(
    own_cells, dtype, offset
) -> None:
    """Log-cosh, quartic and cosh under every optimizer and clip, on the tutorial's points
    and 30 above them (cosh's first gradients ~1e13: unclipped gradient descent
    overflows): every kept value of every step is torch.optim's with the loss's own module
    (its exact backward), bit for bit, and the same cells stop, at the same step, for the
    same reason. grad_norm, which the reference computes with math.hypot, agrees within
    1e-6 wherever its squares do not overflow the dtype (the engine's, as
    clip_grad_norm_'s, do)."""
    cells = [dataclasses.replace(c, dtype=dtype, steps=200) for c in own_cells]
    x, y = TUTORIAL[0], TUTORIAL[1] + offset

    traces, result = _both(cells, x, y)

    norm = regression.TRACE.index("grad_norm")
    exact = [c for c in range(len(regression.TRACE)) if c != norm]
    for i, trace in enumerate(traces):
        rows = _reference_rows(trace).astype(result.trace.dtype)
        assert result.steps_run[i] == len(rows), trace.cell.name
        step, reason = trace.diverged_step, trace.diverged_reason
        assert result.diverged_step[i] == (-1 if step is None else step)
        assert result.diverged_reason[i] == (-1 if reason is None else REASONS.index(reason))
        ours = result.trace[i, : len(rows)]
        np.testing.assert_array_equal(ours[:, exact], rows[:, exact], err_msg=trace.cell.name)
        small = rows[:, norm] < np.sqrt(np.finfo(rows.dtype).max) / 2
        np.testing.assert_allclose(ours[small, norm], rows[small, norm], rtol=1e-6)
    stopped = {t.cell.name for t in traces if t.diverged_step is not None}
    if offset:  # far out, only clipping by norm keeps gradient descent finite
        for loss in ("quartic", "cosh"):
            assert {f"{loss}-sgd-none", f"{loss}-momentum-none"} <= stopped
            assert f"{loss}-sgd-norm" not in stopped


def _mixed_cells(n: int, seed: int) -> Cells:
    """n cells of every loss, optimizer and clip, with random settings, seeds and datasets."""
    rng = np.random.default_rng(seed)
    optimizer = rng.choice(OPTIMIZER_NAMES, n)
    return Cells.of(
        loss=rng.choice(REGRESSION, n),
        optimizer=optimizer,
        clip=rng.choice(CLIP_NAMES, n),
        lr=10 ** rng.uniform(-3, 0.7, n),
        seed=rng.integers(0, 20, n),
        dataset=rng.integers(0, 3, n),
        loss_param=rng.uniform(0.2, 2.0, n),
        **optimizer_settings(rng, optimizer, (0.1, 2.0), (0.05, 1.0)),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_cell_gives_the_same_bits_alone_in_a_batch_or_permuted(dtype) -> None:
    """Bit for bit: each cell of 1000 mixed ones (some diverge) trained in one batch, in
    a permuted batch, and alone, including its trace of every step."""
    cells, (x, y) = _mixed_cells(1000, seed=1), _line_data()

    def train(some: Cells, record) -> regression.Result:
        return regression.train(some, x, y, 200, dtype, record=record)

    assert_same_bits_alone_batched_or_permuted(train, cells)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sum_order_is_torchs_sum_whatever_the_number_of_rows(dtype) -> None:
    """ops.sum_order adds n points in the order torch.sum does (the reference's mean
    and bias gradient), bit for bit; torch.sum over the last axis of (rows, n) gives
    each row the same bits whether it is summed alone or with 5000 others."""
    g = torch.Generator().manual_seed(0)
    for n in [*range(1, 70), 100, 257]:
        x = torch.randn(5000, n, generator=g, dtype=dtype) * torch.rand(5000, 1, generator=g)
        alone = torch.stack([row.sum() for row in x[:300]])
        rows = x.T.contiguous()
        ours = ops.evaluate(ops.sum_order(n, ops.lanes(dtype)), rows[:, :300])
        assert torch.equal(ours, alone), n
        assert torch.equal(x.sum(-1)[:300], alone), n


def test_initial_point_is_the_references_and_random_state_is_left_alone() -> None:
    """Each cell starts where reference.train_cell does (once per distinct seed); the
    caller's random state is the same afterwards."""
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    seeds = np.array([42, 0, 42, 7])
    p = regression.initial_parameters(seeds, torch.float64)
    assert torch.equal(torch.random.get_rng_state(), before)
    for i, seed in enumerate(seeds):
        linear = reference.seeded_model(int(seed), torch.float64).linear
        assert p[0, i].item() == linear.weight.item() and p[1, i].item() == linear.bias.item()


def test_steps_to_target_is_the_first_step_within_tol(cells32) -> None:
    """steps_to_target counts the steps taken when (w, b) is first within tol of the
    target (0 if it starts there, -1 if never); target_error is the final distance."""
    cells = _float64([c for c in cells32 if c.name in ("mse-sgd-none", "l1-sgd-none")])
    traces, _ = _both(cells, *TUTORIAL)
    columns = grid_cells(cells)
    result = regression.train(columns, *TUTORIAL, STEPS, torch.float64, target=(2.0, 0.0), tol=1e-3)
    for i, trace in enumerate(traces):
        dist = [math.hypot(r.weight - 2.0, r.bias) for r in trace.rows]
        within = [k + 1 for k, d in enumerate(dist) if d <= 1e-3]
        assert result.steps_to_target[i] == (within[0] if within else -1)
        assert result.target_error[i] == pytest.approx(dist[-1], rel=1e-12)
    start = regression.train(
        columns,
        *TUTORIAL,
        3,
        torch.float64,
        target=regression.initial_parameters(columns.seed, torch.float64).T.numpy(),
        tol=0.0,
    )
    assert (start.steps_to_target == 0).all()


def test_strided_keeps_every_stride_th_step_of_every_cell() -> None:
    """strided holds steps 0, stride, 2 stride, ... of every cell, equal to the trace."""
    cells = _mixed_cells(50, seed=4)
    x, y = _line_data()
    result = regression.train(cells, x, y, 95, record=np.arange(50), stride=10)
    assert result.strided.shape == (50, 10, 9)
    np.testing.assert_array_equal(result.strided, result.trace[:, ::10])


def test_cells_from_columns_and_grid() -> None:
    """Names, one value broadcast to all; the optimizer's own defaults; a grid cell's
    settings as columns (norm_type 'inf' as inf)."""
    cells = Cells.of(loss=["mse", "huber"], optimizer="adagrad", lr=0.1, seed=[1, 2])
    assert cells.names("loss").tolist() == ["mse", "huber"]
    assert cells.names("optimizer").tolist() == ["adagrad", "adagrad"]
    assert cells.settings["eps"].tolist() == [1e-10, 1e-10]
    assert cells.names("clip").tolist() == ["none", "none"]
    sgd, clip = {"lr": 0.1, "weight_decay": 0.0}, {"max_norm": 1.0, "norm_type": "inf"}
    hand = grid.Cell("c", "mse", "sgd", "handnorm", 0, 5, "float32", {}, sgd, clip)
    from_grid = grid_cells([hand])
    assert from_grid.names("clip").tolist() == ["handnorm"]
    assert from_grid.settings["norm_type"].tolist() == [math.inf]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lr": -1.0}, "lr > 0"),
        ({"lr": math.nan}, "lr > 0"),
        ({"optimizer": "nesterov", "momentum": 0.0}, "nesterov"),
        ({"clip": "norm"}, "max_norm"),
        ({"clip": "value", "clip_value": 0.0}, "clip_value"),
        ({"loss": "huber", "loss_param": -1.0}, "huber"),
        ({"beta2": 1.0}, "beta2"),
        ({"loss": "hinge"}, "unknown names"),
        ({"learning_rate": 0.1}, "unknown settings"),
    ],
)
def test_invalid_cells_are_refused(settings: dict, message: str) -> None:
    """Each invalid setting is refused with a message naming it."""
    columns = {"loss": "mse", "optimizer": "sgd", "lr": 0.1, "seed": 0, **settings}
    with pytest.raises(ValueError, match=message):
        Cells.of(**columns)


def _minibatch_reference(cell: grid.Cell, x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """The tutorial's loop on one cell with each step's minibatch drawn by
    ops.minibatch: (weight, bias) after every step."""
    dtype = reference.DTYPES[cell.dtype]
    model = reference.seeded_model(cell.seed, dtype)
    criterion = reference.make_loss(cell.loss, cell.loss_kwargs)
    optimizer = reference.make_optimizer(cell.optimizer, cell.optimizer_kwargs, model.parameters())
    xs, ys = (torch.tensor(v, dtype=dtype).reshape(-1, 1) for v in (x, y))
    path = []
    for t in range(cell.steps):
        index = torch.from_numpy(ops.minibatch(np.array([cell.seed]), t, size, len(x))[:, 0])
        optimizer.zero_grad()
        criterion(model(xs[index]), ys[index]).backward()
        reference.CLIPS[cell.clip].reference(list(model.parameters()), cell.clip_kwargs)
        optimizer.step()
        path.append([model.linear.weight.item(), model.linear.bias.item()])
    return np.array(path)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_minibatches_are_the_tutorials_loop_on_the_drawn_points(dtype: str, committed) -> None:
    """batch_size 4: every step equals torch.optim on the 4 points ops.minibatch drew
    for that cell and step, bit for bit; the final loss is the whole data's."""
    x, y = _line_data(1)
    chosen = [c for c in grid.cells(committed.train) if c.clip in ("none", "norm")][::5]
    cells = [dataclasses.replace(c, steps=60, dtype=dtype, seed=s) for s, c in enumerate(chosen)]

    result = regression.train(
        grid_cells(cells),
        x,
        y,
        60,
        reference.DTYPES[dtype],
        record=np.arange(len(cells)),
        batch_size=4,
    )

    for i, cell in enumerate(cells):
        expected = _minibatch_reference(cell, x[0], y[0], 4)
        got = result.trace[i][:, [regression.TRACE.index("weight"), regression.TRACE.index("bias")]]
        np.testing.assert_array_equal(got, expected.astype(got.dtype), err_msg=cell.name)
        criterion = reference.make_loss(cell.loss, cell.loss_kwargs)
        w, b, t = (torch.tensor(v, dtype=reference.DTYPES[dtype]) for v in (*got[-1], x[0]))
        whole = criterion(w * t + b, torch.tensor(y[0], dtype=w.dtype)).item()
        assert result.final_loss[i] == pytest.approx(whole, rel=1e-6), cell.name


def test_minibatch_draws_depend_on_seed_and_step_only() -> None:
    """A cell's draws are the same alone or among others, differ by step and seed, and
    cover every point uniformly (chi-square-ish: each of 10 points 10% +- 1%)."""
    seeds = np.array([3, 7, 3])
    draws = ops.minibatch(seeds, 5, 4, 10)

    np.testing.assert_array_equal(draws[:, 0], ops.minibatch(np.array([3]), 5, 4, 10)[:, 0])
    np.testing.assert_array_equal(draws[:, 0], draws[:, 2])
    assert not np.array_equal(draws[:, 0], draws[:, 1])
    assert not np.array_equal(draws, ops.minibatch(seeds, 6, 4, 10))
    counts = np.bincount(ops.minibatch(np.arange(5000), 0, 20, 10).ravel(), minlength=10)
    assert np.all(np.abs(counts / counts.sum() - 0.1) < 0.01)


def test_a_recorded_step_holds_the_grid_traces_columns() -> None:
    """The engine records a step's values under the names, and in the order, of the grid's
    trace (a Row without its step number): both engines' traces read alike."""
    assert trace_columns[1:] == regression.TRACE
