"""SGD's oracle: torch.optim.SGD's algorithm box (its documentation page, not its code) in
plain float64 NumPy: L2 weight decay, then momentum with dampening, optionally Nesterov.
tests/grid/test_reference.py holds torch.optim to it on every variant below."""

from dataclasses import dataclass

import numpy as np
import pytest

from tests.helpers.optimizers_numpy import Array

VARIANTS = [{}, {"weight_decay": 0.3}, {"lr": 0.02}]  # beside the committed settings


@dataclass
class SGD:
    lr: float
    weight_decay: float = 0.0
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    buf: Array | None = None  # b_{t-1}; None before the first step (b_1 = g_1, undampened)

    def step(self, theta: Array, g: Array) -> Array:
        if self.weight_decay != 0:
            g = g + self.weight_decay * theta  # L2: the penalty's gradient joins g
        if self.momentum != 0:
            if self.buf is None:
                self.buf = g.copy()  # t = 1: b_1 = g_1, dampening not applied
            else:
                self.buf = self.momentum * self.buf + (1 - self.dampening) * g
            g = g + self.momentum * self.buf if self.nesterov else self.buf
        return theta - self.lr * g


RULE = SGD
STATE = {"momentum_buffer": "buf"}  # torch.optim's state key -> the rule's attribute


def test_a_step_is_theta_minus_lr_times_the_decayed_gradient() -> None:
    """theta - lr (g + wd theta), by hand."""
    got = SGD(lr=0.1, weight_decay=0.5).step(np.array([1.0, 2.0]), np.array([0.5, -1.0]))
    assert got.tolist() == pytest.approx([1.0 - 0.1 * 1.0, 2.0 - 0.1 * 0.0])
