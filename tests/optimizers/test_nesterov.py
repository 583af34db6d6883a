"""Nesterov's oracle: torch.optim.SGD's box with nesterov=True (tests/optimizers/test_sgd.py's
rule): the step takes g + mu b."""

from functools import partial

import numpy as np
import pytest

from tests.optimizers.test_sgd import SGD

VARIANTS = [{}, {"weight_decay": 0.3}, {"lr": 0.02, "momentum": 0.5}]
RULE = partial(SGD, nesterov=True)
STATE = {"momentum_buffer": "buf"}


def test_the_step_looks_ahead_by_mu_b() -> None:
    """Step 1: b = g, theta - lr (g + mu g), by hand."""
    got = RULE(lr=0.1, momentum=0.9).step(np.zeros(2), np.array([1.0, -1.0]))
    assert got.tolist() == pytest.approx([-0.19, 0.19])
