"""RMSprop's oracle: torch.optim.RMSprop's algorithm box in plain float64 NumPy: eps outside
the square root; centered subtracts the squared running mean of g; momentum accumulates the
normalised step in a buffer that starts at 0."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from tests.helpers.optimizers_numpy import Array

VARIANTS = [
    {},
    {"centered": True},
    {"momentum": 0.5},
    {"weight_decay": 0.3, "alpha": 0.9},
    {"centered": True, "momentum": 0.5, "weight_decay": 0.1, "eps": 1e-3},
    {"lr": 0.05, "alpha": 0.5},
]


@dataclass
class RMSprop:
    lr: float
    alpha: float
    eps: float
    momentum: float
    centered: bool
    weight_decay: float
    v: Array = field(default_factory=lambda: np.zeros(2))
    g_ave: Array = field(default_factory=lambda: np.zeros(2))
    buf: Array = field(default_factory=lambda: np.zeros(2))  # b_0 = 0 (unlike SGD's b_1 = g_1)

    def step(self, theta: Array, g: Array) -> Array:
        if self.weight_decay != 0:
            g = g + self.weight_decay * theta
        self.v = self.alpha * self.v + (1 - self.alpha) * g**2
        v_tilde = self.v
        if self.centered:
            self.g_ave = self.alpha * self.g_ave + (1 - self.alpha) * g
            v_tilde = v_tilde - self.g_ave**2
        normalised = g / (np.sqrt(v_tilde) + self.eps)
        if self.momentum > 0:
            self.buf = self.momentum * self.buf + normalised
            return theta - self.lr * self.buf
        return theta - self.lr * normalised


RULE = RMSprop
STATE = {"square_avg": "v", "grad_avg": "g_ave", "momentum_buffer": "buf"}  # torch's names


def test_the_first_step_divides_by_root_one_minus_alpha() -> None:
    """Step 1: v = (1 - alpha) g^2, so the step is lr sign(g) / sqrt(1 - alpha), by hand."""
    rule = RMSprop(lr=0.1, alpha=0.99, eps=0.0, momentum=0.0, centered=False, weight_decay=0.0)
    got = rule.step(np.zeros(2), np.array([2.0, -3.0]))
    assert got.tolist() == pytest.approx([-1.0, 1.0])  # 0.1 / sqrt(0.01)
