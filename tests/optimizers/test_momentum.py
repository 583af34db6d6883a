"""Heavy-ball momentum's oracle: torch.optim.SGD's box with momentum and dampening
(tests/optimizers/test_sgd.py's rule)."""

import numpy as np
import pytest

from tests.optimizers.test_sgd import SGD

VARIANTS = [
    {},
    {"dampening": 0.5},
    {"momentum": 0.5, "weight_decay": 0.3},
    {"lr": 0.02, "dampening": 0.2, "weight_decay": 0.1},
]
RULE = SGD
STATE = {"momentum_buffer": "buf"}


def test_the_first_buffer_is_the_gradient_undamped_then_damped() -> None:
    """b_1 = g_1 (no dampening), b_2 = mu b_1 + (1 - tau) g_2, by hand."""
    rule = SGD(lr=1.0, momentum=0.9, dampening=0.5)
    theta = rule.step(np.zeros(2), np.array([1.0, 2.0]))
    assert theta.tolist() == [-1.0, -2.0]
    theta = rule.step(theta, np.array([1.0, 2.0]))
    assert theta.tolist() == pytest.approx([-1.0 - (0.9 + 0.5), -2.0 - 2 * (0.9 + 0.5)])
