"""The fused engine against its oracle, the exact engine (bit-identical to torch.optim):
agreement on well-conditioned cells, bit-identity where no op of torch's rounds off IEEE,
the same measures, and determinism (batch, block, order, vector width, processes)."""

import dataclasses
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import grid
from pipeline.engine import classification, regression
from pipeline.engine.cells import CLASSIFICATION, CLIP_NAMES, OPTIMIZER_NAMES, REGRESSION, Cells
from pipeline.engine.fused import classification as fused_classes
from pipeline.engine.fused import regression as fused
from pipeline.study.design import grid_cells
from tests.conftest import ROOT
from tests.helpers.batch_checks import (
    assert_same_bits_alone_batched_or_permuted,
    bits,
    optimizer_settings,
)

TUTORIAL = (np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 4.0, 6.0]]))
AGREE = {torch.float32: 1e-5, torch.float64: 1e-10}  # the tolerances, relative
WELL = 1e-6  # a cell is well conditioned where its float32 run stays this close to its
# float64 run (10x inside the tolerance) at every step: elsewhere float32's rounding
# decides, and two float32 codes need not agree
SGD_FAMILY = ("sgd", "momentum", "nesterov")  # no op of torch's rounds off IEEE in them
TRANSCENDENTAL = ("logcosh", "cosh")  # losses through torch's own exp, log1p, tanh, expm1
MEASURES = ("steps_run", "diverged_step", "diverged_reason", "steps_to_target", "steps_sustained")


def line_data(datasets: int = 3, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """x = linspace(-2, 2, n) and y = 2x + Gaussian noise, one draw per dataset."""
    x = np.linspace(-2.0, 2.0, n)
    noise = np.random.default_rng(0).normal(0.0, 0.5, (datasets, n))
    return np.tile(x, (datasets, 1)), 2.0 * x + noise


def mixed_cells(n: int, seed: int, lr: tuple[float, float] = (-3, 0.7)) -> Cells:
    """n cells of every loss, optimizer and clip, random settings, seeds and datasets."""
    rng = np.random.default_rng(seed)
    optimizer = rng.choice(OPTIMIZER_NAMES, n)
    return Cells.of(
        loss=rng.choice(REGRESSION, n),
        optimizer=optimizer,
        clip=rng.choice(CLIP_NAMES, n),
        lr=10 ** rng.uniform(*lr, n),
        seed=rng.integers(0, 20, n),
        dataset=rng.integers(0, 3, n),
        loss_param=rng.uniform(0.2, 2.0, n),
        **optimizer_settings(rng, optimizer, (0.1, 2.0), (0.05, 1.0)),
    )


def finals(r: regression.Result) -> np.ndarray:
    return np.stack([r.final_weight, r.final_bias], axis=1).astype(np.float64)


def well_conditioned(cells: Cells, x, y, steps: int, **given) -> np.ndarray:
    """The cells whose exact float32 run stays within WELL (relative to the parameters'
    size), at every step, of its float64 run and of itself started 4 ulp away, and stops
    as they do. The others are chaotic (past a stability edge, bouncing around the
    minimiser, L1 crossing its kinks or balancing its sums: 1 ulp grows step by step) or
    at rounding's mercy, and no two float32 codes need agree on them."""
    every = np.arange(len(cells))
    r32 = regression.train(cells, x, y, steps, torch.float32, record=every, **given)
    r64 = regression.train(cells, x, y, steps, torch.float64, record=every, **given)
    start = np.stack([r32.init_weight, r32.init_bias], axis=1).astype(np.float64)
    moved = {**given, "start": start * (1 + 4 * np.finfo(np.float32).eps)}
    nudged = regression.train(cells, x, y, steps, torch.float32, record=every, **moved)
    a = r32.trace[:, :, 7:9].astype(np.float64)
    well = np.ones(len(cells), dtype=bool)
    for other in (r64, nudged):
        b = other.trace[:, :, 7:9].astype(np.float64)
        size = np.maximum(np.nan_to_num(np.abs(b)).max(axis=(1, 2)), 1.0)
        gap = np.nan_to_num(np.abs(a - b), nan=np.inf).max(axis=(1, 2))
        stop_alike = (np.isnan(a).all(axis=2) == np.isnan(b).all(axis=2)).all(axis=1)
        gap[np.isnan(a).all(axis=2).any(axis=1) & stop_alike] = 0.0  # both stopped alike
        well &= stop_alike & (gap <= WELL * size)
    return well


def distances(exact: regression.Result, target: tuple[float, float]) -> np.ndarray:
    """(cells, steps + 1): each cell's distance to the target after 0, 1, ... steps, from
    the exact engine's trace of every step (nan once it stopped)."""
    w = np.concatenate([exact.init_weight[:, None], exact.trace[:, :, 7]], axis=1)
    b = np.concatenate([exact.init_bias[:, None], exact.trace[:, :, 8]], axis=1)
    return np.hypot(w.astype(np.float64) - target[0], b.astype(np.float64) - target[1])


def crossing(d: np.ndarray, a: int, b: int, goal: float) -> bool:
    """Whether the distances d between steps a and b (both reached) all sit within 1e-4
    (relative) of the target's tol: a crossing that rounding decides."""
    low, high = min(a, b), max(a, b)
    return low >= 0 and bool(np.all(np.abs(d[max(low - 1, 0) : high] / goal - 1) < 1e-4))


def assert_agree(ours, exact, mask: np.ndarray, tol: float, near=None) -> None:
    """On the masked cells: final parameters within tol relative (to the size of the
    parameters), the steps kept and divergence equal, and the first touch and sustained
    step equal, or apart only where the exact engine's distance at every step between the
    two is within 1e-4 of the target's tol (`near`: (distances, tol)): a crossing that
    rounding decides."""
    a, b = finals(ours)[mask], finals(exact)[mask]
    size = np.maximum(np.abs(b).max(axis=1), 1.0)
    worst = np.abs(a - b).max(axis=1) / size
    assert worst.max(initial=0.0) <= tol, f"worst {worst.max():.3g} over {mask.sum()} cells"
    for name in MEASURES:
        got, want = getattr(ours, name)[mask], getattr(exact, name)[mask]
        apart = np.flatnonzero(got != want)
        if name in ("steps_to_target", "steps_sustained") and near is not None:
            d, goal = near[0][mask], near[1]
            apart = [i for i in apart if not crossing(d[i], got[i], want[i], goal)]
        assert len(apart) == 0, f"{name}: {got[apart]} != {want[apart]}"


@pytest.fixture(scope="module")
def grid_columns(raw_params: dict) -> Cells:
    from pipeline import params

    return grid_cells(grid.cells(params.parse(raw_params).train))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("data", ["tutorial", "line"])
def test_the_default_grid_agrees_with_the_exact_engine(grid_columns, dtype, data) -> None:
    """Every well-conditioned default grid cell (84, on the tutorial's points and on a
    noisy line) ends within 1e-5 (float32) or 1e-10 (float64) of the exact engine, with
    the same steps kept, divergence, first touch and sustained step."""
    cells = grid_columns
    x, y = TUTORIAL if data == "tutorial" else line_data(1)
    given = {"target": (2.0, 0.0), "tol": 1e-2}

    ours = fused.train(cells, x, y, 500, dtype, **given)
    exact = regression.train(cells, x, y, 500, dtype, record=np.arange(len(cells)), **given)

    well = well_conditioned(cells, x, y, 500, **given)
    assert well.mean() > 0.6
    assert_agree(ours, exact, well, AGREE[dtype], (distances(exact, (2.0, 0.0)), 1e-2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_settings_of_every_rule_agree_with_the_exact_engine(dtype) -> None:
    """1500 cells of every loss, optimizer and clip with random settings (betas, momentum,
    dampening, decay, amsgrad, centered, lr decay, accumulators, norm types 2, inf, 1.5,
    thresholds, loss parameters, lrs 1e-3 .. 5): the well-conditioned ones agree."""
    cells, (x, y) = mixed_cells(1500, seed=4), line_data()
    given = {"target": (2.0, 0.0), "tol": 5e-2}

    ours = fused.train(cells, x, y, 300, dtype, **given)
    exact = regression.train(cells, x, y, 300, dtype, record=np.arange(len(cells)), **given)

    well = well_conditioned(cells, x, y, 300, **given)
    assert 0.4 < well.mean() < 1  # some are past their edge
    assert_agree(ours, exact, well, AGREE[dtype], (distances(exact, (2.0, 0.0)), 5e-2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradient_descent_cells_are_bit_identical_to_the_exact_engine(dtype) -> None:
    """SGD, momentum and Nesterov cells, every piecewise loss and clip (norm types 2 and
    inf), full batch and minibatches: every value of every step the exact engine's, bit for
    bit (their ops are IEEE's in both; Adam, RMSprop and Adagrad take torch's float32 sqrt,
    which is not, and log-cosh and cosh torch's own tanh, exp, log1p and expm1, where the
    kernel calls C's; quartic's products are IEEE's)."""
    cells = mixed_cells(600, seed=6, lr=(-3, 1))  # seed 6: some diverge
    keep = np.isin(cells.names("optimizer"), SGD_FAMILY) & (cells.settings["norm_type"] != 1.5)
    keep &= ~np.isin(cells.names("loss"), TRANSCENDENTAL)
    cells, (x, y) = cells.take(np.flatnonzero(keep)), line_data()
    every = np.arange(len(cells))
    for batch in (0, 4):
        given = {"target": (2.0, 0.0), "tol": 5e-2, "batch_size": batch, "record": every}
        ours = bits(fused.train(cells, x, y, 150, dtype, **given))
        exact = bits(regression.train(cells, x, y, 150, dtype, **given))
        for name in ours:
            if name != "strided":
                np.testing.assert_array_equal(ours[name], exact[name], f"{name}, batch {batch}")
        assert (exact["diverged_step"] >= 0).any()  # some diverge, and stop alike


def test_minibatches_and_starts_agree_with_the_exact_engine() -> None:
    """Seeded minibatches (4 of 40 points) and given starts: the fused engine's measures
    are the exact engine's on the well-conditioned cells."""
    cells, (x, y) = mixed_cells(600, seed=6, lr=(-3, -0.5)), line_data(3, 40)
    start = np.random.default_rng(1).normal(0, 1, (len(cells), 2))
    given = {"target": (2.0, 0.0), "tol": 0.1, "batch_size": 4, "start": start}

    ours = fused.train(cells, x, y, 200, torch.float32, **given)
    exact = regression.train(cells, x, y, 200, torch.float32, **given)

    well = well_conditioned(cells, x, y, 200, **given)
    assert_agree(ours, exact, well, AGREE[torch.float32])
    np.testing.assert_array_equal(ours.init_weight, start[:, 0].astype(np.float32))


def test_traced_steps_are_the_exact_engines_steps() -> None:
    """Result.trace holds the chosen steps of the recorded cells, nan from a cell's stop
    on, as the exact engine's every-step trace has them (SGD on the losses of IEEE ops:
    bit for bit)."""
    cells = mixed_cells(200, seed=7, lr=(-2, 2))
    sgd = np.isin(cells.names("optimizer"), SGD_FAMILY) & (cells.settings["norm_type"] != 1.5)
    sgd &= ~np.isin(cells.names("loss"), TRANSCENDENTAL)
    cells = cells.take(np.flatnonzero(sgd))
    lr = np.where(np.arange(len(cells)) % 4 == 0, 1e6, cells.lr)  # some blow up at once
    cells = dataclasses.replace(cells, settings={**cells.settings, "lr": lr})
    x, y = line_data()
    record, steps = np.arange(0, len(cells), 2), np.array([0, 1, 5, 60, 199])

    ours = fused.train(cells, x, y, 200, record=record, trace_steps=steps)
    exact = regression.train(cells, x, y, 200, record=record)

    assert ours.trace.shape == (len(record), len(steps), len(regression.TRACE))
    np.testing.assert_array_equal(ours.trace, exact.trace[:, steps])
    assert np.isnan(ours.trace).any()  # a recorded cell stopped


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_cell_gives_the_same_bits_alone_in_a_batch_or_permuted(dtype) -> None:
    """Bit for bit: each of 1000 mixed cells (some diverge) trained in one batch, in a
    permuted batch, and alone, its trace of every step included."""
    cells, (x, y) = mixed_cells(1000, seed=1), line_data()

    def train(some: Cells, record) -> regression.Result:
        return fused.train(some, x, y, 200, dtype, record=record)

    assert_same_bits_alone_batched_or_permuted(train, cells)


def test_a_cell_gives_the_same_bits_whatever_its_block() -> None:
    """Blocks of 256, 37 and 1 cells: the same bits for every cell."""
    cells, (x, y) = mixed_cells(300, seed=2), line_data()
    results = [bits(fused.train(cells, x, y, 100, block=b)) for b in (256, 37, 1)]
    for other in results[1:]:
        for name, value in results[0].items():
            np.testing.assert_array_equal(other[name], value, name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_far_starts_stop_quartic_and_cosh_cells_as_the_exact_engine_does(dtype) -> None:
    """Quartic and cosh, gradient descent and Adam, unclipped and clipped by norm, lrs
    0.01 .. 1, started R = 3, 10, 30 from y = 2x's minimiser: the same steps kept, the
    same divergence (step and reason), first touch and sustained step as the exact
    engine. Every unclipped gradient descent overflows and stops, diverged; no clipped one
    does. In float32 from R = 30, cosh's gradient is finite but its square is not: the
    norm clip (as torch's clip_grad_norm_) then scales it by 0, Adam's exp_avg_sq is inf
    and its step 0, and the cell stays put (in float64 it moves)."""
    rows = itertools.product(("quartic", "cosh"), ("sgd", "adam"), ("none", "norm"),
                             (0.01, 0.1, 1.0), (3.0, 10.0, 30.0))  # fmt: skip
    loss, optimizer, clip, lr, far = (np.array(v) for v in zip(*rows, strict=True))
    cells = Cells.of(loss=loss, optimizer=optimizer, clip=clip, lr=lr, seed=0, max_norm=1.0)
    start = np.stack([2 + far / np.sqrt(2), far / np.sqrt(2)], axis=1)
    given = {"target": (2.0, 0.0), "tol": 1e-2, "start": start}

    ours = fused.train(cells, *TUTORIAL, 300, dtype, **given)
    exact = regression.train(cells, *TUTORIAL, 300, dtype, **given)

    for name in MEASURES:
        np.testing.assert_array_equal(getattr(ours, name), getattr(exact, name), name)
    stopped = exact.diverged_step >= 0
    assert stopped[(optimizer == "sgd") & (clip == "none")].all()
    assert not stopped[clip == "norm"].any()
    far_cosh = (loss == "cosh") & (far == 30.0) & ((clip == "norm") | (optimizer == "adam"))
    single = dtype == torch.float32
    stayed = finals(exact)[far_cosh] == start[far_cosh].astype(np.float32 if single else float)
    assert stayed.all() if single else not stayed.any()


def test_a_member_without_a_fused_form_is_refused_by_name(monkeypatch) -> None:
    """Cells of a loss with no fused form: a ValueError naming it and the way out."""
    forms = list(fused.FUSED_LOSSES)
    forms[REGRESSION.index("huber")] = None
    monkeypatch.setattr(fused, "FUSED_LOSSES", forms)
    cells = Cells.of(loss=["mse", "huber"], optimizer="sgd", lr=0.1, seed=0)

    with pytest.raises(ValueError, match=r"no form of loss huber.*study.engine: exact"):
        fused.train(cells, *TUTORIAL, 10)


def class_data() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(3).uniform(-1, 1, (3, 40, 2))
    return x, (x[..., 1] > 2 * x[..., 0]).astype(np.int64)


def class_cells(n: int, seed: int, lr: tuple[float, float] = (-3, 0.5)) -> Cells:
    """n classification cells of every loss, optimizer and clip, random settings."""
    rng = np.random.default_rng(seed)
    optimizer = rng.choice(OPTIMIZER_NAMES, n)
    loss = rng.choice(CLASSIFICATION, n)
    return Cells.of(
        losses=CLASSIFICATION,
        loss=loss,
        optimizer=optimizer,
        clip=rng.choice(CLIP_NAMES, n),
        lr=10 ** rng.uniform(*lr, n),
        seed=rng.integers(0, 20, n),
        dataset=rng.integers(0, 3, n),
        label_smoothing=np.where(loss == "ce", rng.choice([0.0, 0.1], n), 0.0),
        **optimizer_settings(rng, optimizer, (0.1, 2.0), (0.05, 1.0)),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_classification_agrees_with_the_exact_engine(dtype) -> None:
    """nn.Linear(2, 2) under CE and the margin loss, every optimizer and clip, random
    settings: the cells whose float32 and float64 runs agree end within tolerance (exp
    and log1p are C's here, torch's own there), with the same measures."""
    cells, (x, labels) = class_cells(800, seed=8), class_data()

    ours = fused_classes.train(cells, x, labels, 200, dtype)
    exact = classification.train(cells, x, labels, 200, dtype)

    r32 = classification.train(cells, x, labels, 200, torch.float32)
    r64 = classification.train(cells, x, labels, 200, torch.float64)
    size = np.maximum(np.abs(r64.final_params).max(axis=1), 1.0)
    well = np.abs(r32.final_params - r64.final_params).max(axis=1) <= WELL * size
    well &= (r32.diverged_step == r64.diverged_step) & (r32.accuracy == r64.accuracy)
    assert well.mean() > 0.3
    diff = np.abs(ours.final_params - exact.final_params).max(axis=1)[well] / size[well]
    assert diff.max() <= AGREE[dtype]
    for name in ("steps_run", "diverged_step", "steps_to_target", "steps_sustained"):
        np.testing.assert_array_equal(getattr(ours, name)[well], getattr(exact, name)[well])


def test_classification_gives_the_same_bits_alone_in_a_batch_or_permuted() -> None:
    """Bit for bit: each classification cell in one batch, permuted, and alone (lrs up
    to 1e38: some overflow)."""
    cells, (x, labels) = class_cells(300, seed=9, lr=(-3, 38)), class_data()

    def train(some: Cells, record) -> classification.Result:
        return fused_classes.train(some, x, labels, 100, record=record)

    assert_same_bits_alone_batched_or_permuted(train, cells)


def garbage(module, monkeypatch) -> None:
    """module's np.empty, from here on, fills what it makes with NaN, -1 and True."""

    def empty(shape, dtype=float):
        kind = np.dtype(dtype).kind
        return np.full(shape, np.nan if kind == "f" else kind == "b" or -1, dtype)

    proxy = type(np)("numpy")
    proxy.__dict__.update(np.__dict__, empty=empty)
    monkeypatch.setattr(module, "np", proxy)


def test_no_kernel_reads_memory_it_did_not_write(monkeypatch) -> None:
    """Every array the engine allocates uninitialised (np.empty) filled with NaN, -1 and
    True first: the same bits. Found in CI: the regression kernel took its 0 as
    `flag[0] - flag[0]` from scratch memory, and NaN there poisoned a whole run."""
    (x, y), (xc, labels) = line_data(), class_data()
    cells, classed = mixed_cells(400, seed=3), class_cells(300, seed=9)

    def results() -> list[np.ndarray]:
        r = fused.train(cells, x, y, 120, target=(2.0, 0.0), tol=0.05)
        c = fused_classes.train(classed, xc, labels, 100)
        return [v for out in (r, c) for v in vars(out).values() if isinstance(v, np.ndarray)]

    clean = results()
    for module in (fused, fused_classes, fused.linear, fused_classes.linear2):
        garbage(module, monkeypatch)
    for ours, theirs in zip(results(), clean, strict=True):
        assert np.array_equal(ours, theirs, equal_nan=True)


CHILD = """
import json, sys, numpy as np
from pipeline.run import numerics
numerics.pin_kernels()
from tests.engine.test_fused import mixed_cells, line_data
from pipeline.engine.fused import linear, regression as fused
cells, (x, y) = mixed_cells(400, seed=3), line_data()
r = fused.train(cells, x, y, 120, target=(2.0, 0.0), tol=0.05)
np.save(sys.argv[1], np.stack([r.final_weight, r.final_bias, r.final_loss, r.max_grad_norm]))
asm = "".join(linear.run.inspect_asm().values()) if linear.run.stats.cache_misses else ""
print(json.dumps({"hits": sum(linear.run.stats.cache_hits.values()),
                  "misses": sum(linear.run.stats.cache_misses.values()),
                  "zmm": asm.count("zmm")}))
"""


def child(out: Path, cache: Path, **env: str) -> dict:
    """CHILD in a fresh process with this kernel cache and environment: what it found."""
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(out)],
        env={**os.environ, "GRADLAB_KERNEL_CACHE": str(cache), **env},
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.slow
def test_kernels_compile_once_and_give_the_same_bits_on_avx2_and_avx512(tmp_path) -> None:
    """A process compiles the kernel into an empty cache, the next one loads it; a kernel
    compiled for AVX2 only (Haswell: no zmm register) gives the host's bits."""
    host = child(tmp_path / "host.npy", tmp_path / "cache")
    again = child(tmp_path / "again.npy", tmp_path / "cache")
    narrow = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx,+avx2,+fma,+sse4.2"}
    avx2 = child(tmp_path / "avx2.npy", tmp_path / "cache", **narrow)

    assert (host["misses"], again["misses"], again["hits"]) == (1, 0, 1)
    assert avx2["misses"] == 1 and avx2["zmm"] == 0  # its own build: 256-bit vectors only
    first = np.load(tmp_path / "host.npy")
    for other in ("again", "avx2"):
        assert np.array_equal(np.load(tmp_path / f"{other}.npy"), first, equal_nan=True), other


def test_results_have_the_exact_engines_fields() -> None:
    """The fused Results are the exact engine's dataclasses: every caller reads either."""
    cells = Cells.of(loss="mse", optimizer="adam", lr=0.1, seed=[0, 1])
    r = fused.train(cells, *TUTORIAL, 20, target=(2.0, 0.0), tol=0.01)
    assert isinstance(r, regression.Result)
    assert dataclasses.fields(r) == dataclasses.fields(regression.Result)
