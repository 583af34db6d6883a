"""Training the study's parts in chunks: train_chunk's rows are the engine's own results,
the same bits whatever the chunking (the study's determinism promise), and the trace rows
hold exactly the steps and cells asked for."""

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline import params
from pipeline.engine import regression
from pipeline.engine.fused import regression as fused
from pipeline.study import chunks, scenarios
from pipeline.study import design as st
from tests.helpers import study_fixtures

CELL_COLUMNS = [  # names are an API: cells.parquet, the analysis stage, the drift check
    "part", "scenario", "loss", "optimizer", "clip", "name", "lr_kind", "seed",
    "lr", "loss_param", "momentum", "dampening", "weight_decay", "beta1", "beta2", "eps",
    "alpha", "lr_decay", "initial_accumulator_value", "max_norm", "norm_type", "clip_value",
    "amsgrad", "centered", "momentum_decay", "batch_size", "steps", "dtype", "engine",
    "target_weight", "target_bias", "target_width", "minimiser_error", "tol", "theory_lr",
    "line_weight", "line_bias",
    "init_weight", "init_bias", "final_weight", "final_bias", "final_loss", "diverged_step",
    "steps_run", "max_grad_norm", "clip_fraction", "target_error", "steps_sustained",
    "touch_share", "excursion", "steps_first_touch", "true_error", "diverged",
    "diverged_reason",
]  # fmt: skip
TRACE_COLUMNS = [
    "part", "scenario", "loss", "optimizer", "clip", "name", "lr_kind", "seed", "lr", "step",
    "loss_value", "grad_norm", "grad_weight", "grad_bias", "clipped_grad_weight",
    "clipped_grad_bias", "clipped", "weight", "bias", "error",
]  # fmt: skip
MEASURES = (
    "init_weight", "init_bias", "final_weight", "final_bias", "final_loss", "diverged_step",
    "steps_run", "max_grad_norm", "clip_fraction", "target_error", "steps_sustained",
    "touch_share", "excursion",
)  # fmt: skip
FLOAT32_REL = 1e-6  # a float64 distance rounded to float32: within 2^-24 relative
SMALL_STEPS = 100  # the chunking tests: enough steps to diverge, converge and clip


@pytest.fixture(scope="module")
def tiny(raw_params: dict) -> params.Params:
    return study_fixtures.params_for(raw_params)


@pytest.fixture(scope="module")
def found(tiny: params.Params) -> dict[str, scenarios.Points]:
    return study_fixtures.data_for(tiny)


@pytest.fixture(scope="module")
def tune_parts(tiny: params.Params, found: dict[str, scenarios.Points]) -> list[st.Part]:
    return st.tune_parts(tiny, found)


def report_of(tiny: params.Params, found: dict[str, scenarios.Points]) -> list[st.Part]:
    """The report parts at made-up tuned lrs (0.1 everywhere)."""
    s = tiny.study
    tuned = {
        f"{n}-{loss}-{o}-{c}": 0.1
        for n in s.scenarios
        for loss in s.losses
        for o in s.optimizers
        for c in s.clips
    }
    return st.report_parts(tiny, found, tuned)


def direct(
    part: st.Part, record: np.ndarray | tuple[()] = (), engine: str = "exact"
) -> regression.Result:
    """The engine run on the part's cells, as a caller of its train would write it (every
    step of the recorded cells traced)."""
    train = fused.train if engine == "fused" else regression.train
    return train(
        part.cells,
        part.x,
        part.y,
        part.steps,
        getattr(torch, part.dtype),
        record=record,
        target=part.target,
        tol=part.tol,
        batch_size=part.batch_size,
        start=part.start,
    )


def frame(columns: chunks.Columns | None) -> pd.DataFrame:
    assert columns is not None
    return pd.DataFrame(columns)


def assert_identical(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns, dtypes and values; floats bit for bit (nan where nan)."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for c in a.columns:
        assert a[c].dtype == b[c].dtype, c
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), c
        else:
            assert (x == y).all(), c


# --- one chunk: the engine's results, labelled -----------------------------------------
def test_cell_rows_have_the_documented_columns(tune_parts: list[st.Part]) -> None:
    """A chunk's cell rows: labels, settings, data and target, measures, in that order."""
    rows, traces = chunks.train_chunk(chunks.Chunk(tune_parts[0]))

    assert list(rows) == CELL_COLUMNS
    assert traces is None  # none asked for
    assert {len(v) for v in rows.values()} == {len(tune_parts[0])}


@pytest.mark.parametrize("engine", ["fused", "exact"])
@pytest.mark.parametrize("which", [0, 1])  # tutorial (3 points), noisy (20)
def test_cell_rows_are_a_direct_engine_train_bit_for_bit(
    tune_parts: list[st.Part], which: int, engine: str
) -> None:
    """train_chunk's measures are its engine's train's on the same cells, bit for bit."""
    part = tune_parts[which]

    rows, _ = chunks.train_chunk(chunks.Chunk(part, engine=engine))

    r = direct(part, engine=engine)
    for k in MEASURES:
        assert np.array_equal(rows[k], getattr(r, k), equal_nan=True), k
    assert np.array_equal(rows["steps_first_touch"], r.steps_to_target)  # renamed
    assert (rows["engine"] == engine).all()
    for k in ("lr", "loss_param", "momentum", "beta1", "beta2", "eps", "max_norm", "seed"):
        got = part.cells.seed if k == "seed" else part.cells.settings[k]
        assert np.array_equal(rows[k], got, equal_nan=True), k
    for k in ("scenario", "loss", "optimizer", "clip"):
        assert rows[k].tolist() == part.labels[k].tolist(), k
    assert np.array_equal(rows["target_weight"], part.target[:, 0, 0])
    assert np.array_equal(rows["target_bias"], part.target[:, 0, 1])
    assert (rows["target_width"] == 0).all()  # curved losses: one minimiser
    line = np.hypot(*(part.target[:, 0] - part.line).T)
    np.testing.assert_allclose(rows["minimiser_error"], line, rtol=1e-12, atol=1e-15)
    assert (rows["part"] == "tune").all() and (rows["lr_kind"] == "").all()


def test_cell_rows_derive_true_error_and_divergence_from_the_measures(
    tune_parts: list[st.Part],
) -> None:
    """true_error is the final distance to the line; diverged and its reason the engine's."""
    part = tune_parts[0]

    rows, _ = chunks.train_chunk(chunks.Chunk(part))

    r = direct(part, engine="fused")
    w, b = r.final_weight.astype(np.float64), r.final_bias.astype(np.float64)
    np.testing.assert_array_equal(rows["true_error"], np.hypot(w - 2.0, b - 0.0))
    assert rows["diverged"].tolist() == (r.diverged_step >= 0).astype(int).tolist()
    reasons = [regression.REASONS[k] if k >= 0 else "" for k in r.diverged_reason]
    assert rows["diverged_reason"].tolist() == reasons
    assert rows["diverged"].sum() > 0  # lr up to 1 on the tutorial: some diverge


# --- chunks: the same bits however the cells are cut -----------------------------------
@pytest.fixture(scope="module")
def small(raw_params: dict) -> params.Params:
    """The tiny study at SMALL_STEPS, plus a minibatch scenario, short edge runs."""
    return study_fixtures.params_for(
        raw_params,
        steps=SMALL_STEPS,
        scenarios=["tutorial", "noisy", "heavy"],
        stability={"steps": 200, "step": 0.05, "span": 0.1, "tol": 1e-6},
    )


def test_a_part_trained_whole_or_in_chunks_of_7_gives_identical_rows(
    small: params.Params,
) -> None:
    """Tune and edge parts in one chunk or chunks of 7 give bit-identical rows."""
    found = study_fixtures.data_for(small)
    parts = [*st.tune_parts(small, found), *st.edge_parts(small, found)]
    assert any(q.batch_size for q in parts) and any(q.start is not None for q in parts)

    whole, _ = study_fixtures.train(parts, 10**6, None)
    cut, _ = study_fixtures.train(parts, 7, None)

    assert_identical(whole, cut)
    assert whole["diverged"].sum() > 0 and (whole["steps_first_touch"] >= 0).sum() > 0


def test_traces_trained_whole_or_in_chunks_of_7_are_identical(small: params.Params) -> None:
    """The report part's trace rows (and cell rows) do not depend on the chunking either."""
    found = study_fixtures.data_for(small)
    parts = report_of(small, found)
    steps = np.array([0, 1, 2, 10, 50, SMALL_STEPS - 1])

    whole_cells, whole = study_fixtures.train(parts, 10**6, steps)
    cut_cells, cut = study_fixtures.train(parts, 7, steps)

    assert whole is not None and cut is not None
    assert_identical(whole_cells, cut_cells)
    assert_identical(whole, cut)


def test_a_cell_bits_do_not_depend_on_its_neighbours(small: params.Params) -> None:
    """A cell trained alone gives the row it has among its whole part."""
    part = st.tune_parts(small, study_fixtures.data_for(small))[1]
    whole = frame(chunks.train_chunk(chunks.Chunk(part))[0])

    for i in range(0, len(part), 37):
        alone = frame(chunks.train_chunk(chunks.Chunk(chunks.take(part, np.array([i]))))[0])

        assert_identical(alone, whole.iloc[[i]].reset_index(drop=True))


# --- traces ----------------------------------------------------------------------------
def test_trace_rows_have_the_documented_columns(
    tiny: params.Params, found: dict[str, scenarios.Points]
) -> None:
    """Trace rows: labels, lr, step, the engine's 9 trace values (loss as loss_value), error."""
    part = report_of(tiny, found)[0]

    _, traces = chunks.train_chunk(chunks.Chunk(part, np.array([0, 5])))

    assert list(frame(traces).columns) == TRACE_COLUMNS


def test_trace_rows_are_the_asked_steps_of_the_cells_not_at_the_default_lr(
    tiny: params.Params, found: dict[str, scenarios.Points]
) -> None:
    """Traces: each asked step below steps, for the cells not at the default lr only."""
    part = report_of(tiny, found)[1]
    asked = np.array([0, 1, 7, 100, tiny.study.steps - 1, tiny.study.steps, 10**6])

    rows, traces = chunks.train_chunk(chunks.Chunk(part, asked))

    t = frame(traces)
    assert set(t["lr_kind"]) == {"tuned"}
    assert len(t) == (part.labels["lr_kind"] == "tuned").sum() * 5
    assert (rows["diverged"][part.labels["lr_kind"] == "tuned"] == 0).all()  # all steps kept
    for _, cell in t.groupby(["scenario", "loss", "optimizer", "clip", "seed"]):
        assert cell["step"].tolist() == [0, 1, 7, 100, tiny.study.steps - 1]


@pytest.mark.parametrize("engine", ["fused", "exact"])
def test_trace_values_are_the_engine_trace_and_error_the_distance_to_target(
    tiny: params.Params, found: dict[str, scenarios.Points], engine: str
) -> None:
    """Trace values are the engine's own trace; error is the distance to the target."""
    part = report_of(tiny, found)[1]
    asked = np.array([0, 3, 40, tiny.study.steps - 1])

    rows, traces = chunks.train_chunk(chunks.Chunk(part, asked, engine))

    t = frame(traces)
    r = direct(part, record=np.arange(len(part)), engine=engine)
    key = ["scenario", "loss", "optimizer", "clip", "seed", "lr_kind"]
    index = {k: i for i, k in enumerate(frame(rows)[key].itertuples(index=False, name=None))}
    cell = np.array([index[k] for k in t[key].itertuples(index=False, name=None)])
    for i, name in enumerate(regression.TRACE):
        column = "loss_value" if name == "loss" else name
        assert np.array_equal(t[column].to_numpy(), r.trace[cell, t["step"], i]), column
    assert set(t["loss"]) <= {"mse", "huber"}
    assert (part.target == part.target[:, :1]).all()  # mse, huber: points
    target = part.target[cell, 0]
    w, b = t["weight"].to_numpy(np.float64), t["bias"].to_numpy(np.float64)
    expected = np.hypot(w - target[:, 0], b - target[:, 1])
    np.testing.assert_allclose(t["error"], expected, rtol=FLOAT32_REL, atol=0)
    assert t["error"].dtype == np.float32


def test_a_diverging_cell_trace_stops_at_its_diverged_step(tune_parts: list[st.Part]) -> None:
    """A diverged cell's trace holds steps 0 .. diverged_step - 1, every kept value finite."""
    # kept: finite loss, gradient and parameters (the float32 gradient norm may overflow)
    part = tune_parts[0]  # the tutorial, lr up to 1: sgd diverges past ~0.18
    steps = part.steps

    rows, traces = chunks.train_chunk(chunks.Chunk(part, np.arange(steps)))

    t = frame(traces)
    kept = np.where(rows["diverged"] == 1, rows["diverged_step"], steps)
    assert (rows["diverged"] == 1).any() and (kept < steps).any()
    assert len(t) == kept.sum()
    ends = np.cumsum(kept)  # rows come cell by cell, in the part's order
    for i in range(len(part)):
        got = t.iloc[ends[i] - kept[i] : ends[i]]
        assert got["step"].tolist() == list(range(kept[i])), i
        assert (got["seed"] == rows["seed"][i]).all() and (got["lr"] == rows["lr"][i]).all()
        values = got[["loss_value", "grad_weight", "grad_bias", "weight", "bias"]].to_numpy()
        assert np.isfinite(values).all(), i
