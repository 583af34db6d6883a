"""Mean absolute error's oracle: torch.nn.L1Loss (sign(0) = 0), and its set of minimisers."""

import numpy as np
import torch

from pipeline.losses import l1

KWARGS: dict[str, float] = {}  # its settings in the closed-form tests (tests/grid)


def test_value_and_derivative_are_torchs_with_sign_0_at_0() -> None:
    """l(d) = |d| and l'(d) = sign(d), 0 at 0: torch's L1Loss and its autograd."""
    d = torch.tensor([-2.0, -0.5, 0.0, 0.3, 4.0], dtype=torch.float64, requires_grad=True)
    torch.nn.L1Loss(reduction="sum")(d, torch.zeros_like(d)).backward()
    assert np.array_equal(l1.LOSS.value(d.detach().numpy(), {}), np.abs(d.detach().numpy()))
    assert np.array_equal(l1.LOSS.derivative(d.detach().numpy(), {}), d.grad.numpy())


def test_a_polygon_of_minimisers_is_not_unique_a_sharp_one_is() -> None:
    """x = 1, 2, 3, 4 and y = 0, 1, 1, 0: a flat valley (not unique); y = 2x: one line."""
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    flat = np.array([[0.0, 1.0, 1.0, 0.0]])
    w, b = l1.least_absolute(x, flat)
    assert not l1.LOSS.unique(x, flat, w, b, {})[0]
    w, b = l1.least_absolute(x, 2 * x)
    assert (w[0], b[0]) == (2.0, 0.0) and l1.LOSS.unique(x, 2 * x, w, b, {})[0]
