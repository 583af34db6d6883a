"""Adam's oracle: torch.optim.Adam's algorithm box in plain float64 NumPy (L2 decay added
to g; AdamW's decoupled decay as an option); amsgrad keeps the running max of v_t and
applies the bias correction to that max. tests/grid/test_reference.py holds torch.optim to
it on every variant below."""

from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pytest

from tests.helpers.optimizers_numpy import Array

VARIANTS = [
    {},
    {"weight_decay": 0.3},
    {"amsgrad": True, "betas": [0.8, 0.9]},
    {"amsgrad": True, "weight_decay": 0.1, "eps": 1e-3, "lr": 0.1},
]


@dataclass
class Adam:
    lr: float
    betas: list[float]
    eps: float
    weight_decay: float
    amsgrad: bool
    decoupled: bool  # True: AdamW
    t: int = 0
    m: Array = field(default_factory=lambda: np.zeros(2))
    v: Array = field(default_factory=lambda: np.zeros(2))
    v_max: Array = field(default_factory=lambda: np.zeros(2))

    def step(self, theta: Array, g: Array) -> Array:
        beta1, beta2 = self.betas
        self.t += 1
        if self.decoupled:
            theta = theta - self.lr * self.weight_decay * theta
        elif self.weight_decay != 0:
            g = g + self.weight_decay * theta
        self.m = beta1 * self.m + (1 - beta1) * g
        self.v = beta2 * self.v + (1 - beta2) * g**2
        m_hat = self.m / (1 - beta1**self.t)
        if self.amsgrad:
            self.v_max = np.maximum(self.v_max, self.v)  # max of the raw v, then corrected
            v_hat = self.v_max / (1 - beta2**self.t)
        else:
            v_hat = self.v / (1 - beta2**self.t)
        return theta - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


RULE = partial(Adam, decoupled=False)
STATE = {"exp_avg": "m", "exp_avg_sq": "v", "max_exp_avg_sq": "v_max"}  # torch's names


def test_the_first_step_is_lr_times_the_sign_of_g() -> None:
    """Bias-corrected, step 1 moves each parameter by lr g / (|g| + eps): lr sign(g)."""
    rule = RULE(lr=0.1, betas=[0.9, 0.999], eps=1e-12, weight_decay=0.0, amsgrad=False)
    assert rule.step(np.zeros(2), np.array([3.0, -0.2])).tolist() == pytest.approx([-0.1, 0.1])
