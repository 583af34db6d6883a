"""Oracle tests: the closed-form loss values and gradients against torch, and one by hand."""

import importlib

import numpy as np
import pytest
import torch

from pipeline.grid import closed_form
from pipeline.grid.model import loss_class
from pipeline.losses import LOSSES, ce
from pipeline.params import LossName

# Every loss with settings away from 1 (its oracle test's), so a missing parameter shows.
KWARGS: dict[LossName, dict[str, float]] = {
    name: importlib.import_module(f"tests.losses.test_{name}").KWARGS for name in LOSSES
}
RTOL = ATOL = 1e-12  # float64 on both sides: only the order of summation differs


def errors_around(kink: float) -> list[float]:
    """Errors d = y_hat - y on both sides of +-kink, far away, and exactly 0 (L1's sign(0))."""
    near = [kink - 1e-3, kink + 1e-3, kink / 2, 3 * kink]
    return [0.0, *near, *(-d for d in near)]


def kink(name: LossName) -> float:
    """Where the loss switches from quadratic to linear (1 for losses without one)."""
    return KWARGS[name].get("beta", KWARGS[name].get("delta", 1.0))


def autograd(
    name: LossName, kwargs: dict[str, float], w: float, b: float, x: np.ndarray, y: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dL/dw, dL/db, dL/dx) from torch, in float64, for y_hat = w * x + b."""
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = loss_class(name)(**kwargs)(wt * xt + bt, torch.tensor(y, dtype=torch.float64))
    loss.backward()
    assert wt.grad is not None and bt.grad is not None and xt.grad is not None
    return wt.grad, bt.grad, xt.grad


def test_every_loss_has_a_closed_form() -> None:
    """Every loss of the registry has settings here, from its oracle test."""
    assert set(LOSSES) == set(KWARGS)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_values_equal_the_torch_loss(name: LossName) -> None:
    """Each term l(d), at random errors, at and around each kink, equals torch's loss of d."""
    rng = np.random.default_rng(0)
    d = np.array([*errors_around(kink(name)), kink(name), -kink(name), *rng.normal(0, 2, 50)])

    got = LOSSES[name].value(d, KWARGS[name])

    loss = loss_class(name)(**KWARGS[name], reduction="none")
    want = loss(torch.tensor(d), torch.zeros(d.size, dtype=torch.float64))  # error d exactly
    torch.testing.assert_close(torch.tensor(got), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("seed", range(5))
def test_closed_form_equals_autograd(name: LossName, seed: int) -> None:
    """For random w, b, x and errors on both sides of each kink, closed form == autograd."""
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=2)
    d = np.array(errors_around(kink(name)))
    x = rng.normal(size=d.size)
    y_hat = w * x + b
    y = y_hat - d  # d = 0 stays exactly 0: y_hat - y_hat
    want_w, want_b, want_x = autograd(name, KWARGS[name], w, b, x, y)

    got = closed_form.gradients(name, KWARGS[name], w, b, list(x), list(y))

    for value, want in [(got.weight, want_w), (got.bias, want_b), (got.inputs, want_x)]:
        have = torch.tensor(value, dtype=torch.float64)
        torch.testing.assert_close(have, want, rtol=RTOL, atol=ATOL)


def test_mse_by_hand_at_the_tutorials_points() -> None:
    """MSE at w = 1, b = 0, x = 1, 2, 3, y = 2x: errors -1, -2, -3, so g = 2d/3 by hand."""
    got = closed_form.gradients("mse", {}, 1.0, 0.0, [1.0, 2.0, 3.0], [2.0, 4.0, 6.0])

    # g = (-2/3, -4/3, -2); dL/dw = sum g x = -2/3 - 8/3 - 6 = -28/3; dL/db = sum g = -4
    assert got.weight == pytest.approx(-28 / 3, rel=1e-15)
    assert got.bias == pytest.approx(-4.0, rel=1e-15)
    assert got.inputs == pytest.approx((-2 / 3, -4 / 3, -2.0), rel=1e-15)


def test_sgd_step_subtracts_lr_times_gradient() -> None:
    """One SGD step moves each parameter by -lr times its gradient."""
    grads = closed_form.Gradients(weight=-28 / 3, bias=-4.0, inputs=())

    w, b = closed_form.sgd_step(1.0, 0.0, grads, lr=0.01)

    assert (w, b) == pytest.approx((1.0 + 0.28 / 3, 0.04), rel=1e-15)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_cross_entropy_gradient_is_softmax_minus_the_smoothed_one_hot(smoothing: float) -> None:
    """ce.closed_form's value and gradients equal torch's CrossEntropyLoss with
    label smoothing through autograd, on random logits (float64, within 1e-12)."""
    rng = np.random.default_rng(7)
    w, b, x = rng.normal(size=(2, 2)), rng.normal(size=2), rng.normal(size=(9, 2))
    labels = rng.integers(0, 2, 9)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    loss = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(
        torch.tensor(x) @ tw.T + tb, torch.tensor(labels)
    )
    loss.backward()

    value, dw, db = ce.closed_form(w, b, x, labels.tolist(), smoothing)

    assert value == pytest.approx(loss.item(), abs=1e-12)
    np.testing.assert_allclose(dw, tw.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(db, tb.grad.numpy(), atol=1e-12)
