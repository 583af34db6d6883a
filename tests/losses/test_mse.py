"""Mean squared error's oracle: torch.nn.MSELoss, and least squares by hand."""

import numpy as np
import torch

from pipeline.losses import mse

KWARGS: dict[str, float] = {}  # its settings in the closed-form tests (tests/grid)


def test_value_and_derivative_are_torchs() -> None:
    """l(d) = d^2 and l'(d) = 2d, as torch's MSELoss and its autograd give them."""
    d = torch.tensor([-2.0, -0.5, 0.0, 0.3, 4.0], dtype=torch.float64, requires_grad=True)
    torch.nn.MSELoss(reduction="sum")(d, torch.zeros_like(d)).backward()
    assert np.allclose(mse.LOSS.value(d.detach().numpy(), {}), d.detach().numpy() ** 2)
    assert np.allclose(mse.LOSS.derivative(d.detach().numpy(), {}), d.grad.numpy())


def test_the_minimiser_of_y_equals_2x_is_exactly_2_0() -> None:
    """Least squares on the tutorial's points recovers the generating line bit for bit,
    and on noisy data the normal equations' solution."""
    x = np.array([[1.0, 2.0, 3.0]])
    assert mse.least_squares(x, 2 * x) == (np.array([2.0]), np.array([0.0]))
    xs = np.random.default_rng(0).uniform(-2, 2, (1, 20))
    ys = 1.5 * xs - 0.3 + np.random.default_rng(1).normal(0, 0.5, (1, 20))
    w, b = mse.least_squares(xs, ys)
    want = np.linalg.lstsq(np.c_[xs[0], np.ones(20)], ys[0], rcond=None)[0]
    assert np.allclose([w[0], b[0]], want, rtol=1e-12)
