"""Adagrad's oracle: torch.optim.Adagrad's algorithm box in plain float64 NumPy: state_sum
starts at initial_accumulator_value; step t uses lr / (1 + (t - 1) lr_decay)."""

from dataclasses import dataclass

import numpy as np
import pytest

from tests.helpers.optimizers_numpy import Array

VARIANTS = [
    {},
    {"lr_decay": 0.1},
    {"initial_accumulator_value": 1.0},
    {"weight_decay": 0.3, "eps": 1e-3},
    {"lr": 0.2, "lr_decay": 0.05, "initial_accumulator_value": 0.5},
]


@dataclass
class Adagrad:
    lr: float
    lr_decay: float
    eps: float
    initial_accumulator_value: float
    weight_decay: float
    t: int = 0
    state_sum: Array | None = None  # tau, set at the first step

    def step(self, theta: Array, g: Array) -> Array:
        self.t += 1
        if self.state_sum is None:
            self.state_sum = np.full_like(theta, self.initial_accumulator_value)
        clr = self.lr / (1 + (self.t - 1) * self.lr_decay)
        if self.weight_decay != 0:
            g = g + self.weight_decay * theta
        self.state_sum = self.state_sum + g**2
        return theta - clr * g / (np.sqrt(self.state_sum) + self.eps)


RULE = Adagrad
STATE = {"sum": "state_sum"}  # torch's name


def test_steps_shrink_as_the_sum_of_squares_grows() -> None:
    """A constant gradient g: step t moves lr g / (|g| sqrt(t)), by hand."""
    rule = Adagrad(lr=1.0, lr_decay=0.0, eps=0.0, initial_accumulator_value=0.0, weight_decay=0.0)
    first = rule.step(np.zeros(2), np.array([4.0, 4.0]))
    second = rule.step(first, np.array([4.0, 4.0]))
    assert first.tolist() == [-1.0, -1.0]
    assert (second - first).tolist() == pytest.approx([-1 / np.sqrt(2)] * 2)
