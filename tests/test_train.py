"""Training: oracle checks against closed-form SGD, determinism, divergence, bad data."""

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from pipeline import grid, params, record, train
from tests.conftest import ROOT, small_grid, write_params

X = torch.tensor([[1.0], [2.0], [3.0]])
Y = 2 * X


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
    trace = train.train_cell(cell, X, Y)
    w, b = trace.initial
    x, y = X.flatten().double(), Y.flatten().double()
    residual = w * x + b - y
    grad_w, grad_b = (2 * residual * x).mean().item(), (2 * residual).mean().item()
    row = dict(zip(record.COLUMNS, trace.rows[0], strict=True))
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
    trace = train.train_cell(cell, X, Y)
    assert trace.final() == pytest.approx((2.0, 0.0), abs=1e-4)
    assert trace.final_loss == pytest.approx(0.0, abs=1e-8)


def test_every_cell_of_a_seed_starts_from_the_same_weights(committed: params.Params) -> None:
    """All cells with seed 42 share torch.manual_seed(42)'s nn.Linear(1, 1) initial weights."""
    torch.manual_seed(42)
    reference = torch.nn.Linear(1, 1)
    expected = (reference.weight.item(), reference.bias.item())
    cells = grid.cells(committed.train)[:5]
    assert {
        train.train_cell(grid.Cell(**{**c.__dict__, "steps": 1}), X, Y).initial for c in cells
    } == {expected}


def test_training_is_bitwise_deterministic(committed: params.Params) -> None:
    """The same cell trained twice gives identical traces, bit for bit."""
    cell = _cell(committed, steps=50)
    first, second = train.train_cell(cell, X, Y), train.train_cell(cell, X, Y)
    assert first.rows == second.rows and first.final_loss == second.final_loss


def test_worker_processes_do_not_change_results(committed: params.Params) -> None:
    """Training a grid in 2 processes gives the same traces as in 1."""
    cells = [grid.Cell(**{**c.__dict__, "steps": 20}) for c in grid.cells(committed.train)[:6]]
    env = committed.env
    one = {
        t.cell.name: t.rows
        for t in train.train_grid(cells, X, Y, env.model_copy(update={"workers": 1}))
    }
    two = {
        t.cell.name: t.rows
        for t in train.train_grid(cells, X, Y, env.model_copy(update={"workers": 2}))
    }
    assert one == two and len(one) == 6


def test_clipping_is_recorded_before_and_after(committed: params.Params) -> None:
    """With max_norm 0.1 every step clips: the norm recorded is pre-clip, the applied one 0.1."""
    cell = _cell(committed, clip="norm", steps=10, clip_kwargs={"max_norm": 0.1, "norm_type": 2.0})
    frame = record.to_frame(train.train_cell(cell, X, Y))
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
    trace = train.train_cell(cell, X, Y)
    assert trace.diverged_step is not None and trace.diverged_reason in (
        "loss",
        "gradient",
        "parameters",
    )
    assert len(trace.rows) == trace.diverged_step < 500
    assert all(math.isfinite(v) for row in trace.rows for v in row)
    summary = record.summary(trace, (2.0, 0.0))
    assert summary["diverged"] == 1 and summary["diverged_step"] == trace.diverged_step
    json.dumps(summary, allow_nan=False)  # no NaN/inf reaches the metrics file


def _train_args(tmp_path: Path, params_file: Path, data: Path) -> list[str]:
    """The train stage's arguments, writing into tmp_path."""
    out = ["--traces", str(tmp_path / "traces"), "--metrics", str(tmp_path / "metrics.json")]
    return ["--params", str(params_file), "--data", str(data), *out]


def _run_train(tmp_path: Path, params_file: Path, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.train", *_train_args(tmp_path, params_file, data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_main_writes_a_trace_per_cell_and_the_metrics(tmp_path: Path, raw_params: dict) -> None:
    """The stage writes traces/<cell>.csv for every cell and one metrics entry per cell."""
    p = write_params(tmp_path / "params.yaml", small_grid(raw_params))
    data = tmp_path / "points.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]}).to_csv(data, index=False)
    run = _run_train(tmp_path, p, data)
    assert run.returncode == 0, run.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    names = sorted(f.stem for f in (tmp_path / "traces").iterdir())
    assert names == sorted(metrics) and len(names) == 8
    frame = record.read_frame(tmp_path / "traces" / "mse-sgd-none.csv")
    assert list(frame.columns) == list(record.COLUMNS) and len(frame) == 30


BAD_DATA = [
    ("x,z\n1,2\n", "missing column y"),
    ("x,y\n", "no data rows"),
    ("", "empty file"),
    ("x,y\n1,2\n2,nan\n", "line 3, column y: 'nan' is not a finite number"),
    ("x,y\n1,2\ninf,4\n", "line 3, column x: 'inf' is not a finite number"),
    ("x,y\n1,2\n2,four\n", "line 3, column y: 'four' is not a finite number"),
    ("x,y\n1,2\n2,\n", "line 3, column y: '' is not a finite number"),
]


@pytest.mark.parametrize(("text", "message"), BAD_DATA)
def test_bad_data_is_refused_naming_file_line_and_column(
    tmp_path: Path, raw_params: dict, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken points file exits 2 with one line naming file, line and column; no outputs."""
    p = write_params(tmp_path / "params.yaml", small_grid(copy.deepcopy(raw_params)))
    data = tmp_path / "points.csv"
    data.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        train.main(_train_args(tmp_path, p, data))
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {data}: {message}")
    assert not (tmp_path / "traces").exists() and not (tmp_path / "metrics.json").exists()


def test_pin_sets_threads_and_deterministic_mode() -> None:
    """pin() sets torch's thread count and its deterministic-algorithms flag."""
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    try:
        train.pin(1, True)
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        train.pin(1, False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        train.pin(*before)
