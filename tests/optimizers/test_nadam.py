"""NAdam's oracle: torch.optim.NAdam's algorithm box in plain float64 NumPy (Dozat's
Nesterov-accelerated Adam with torch's momentum warm-up), but for one fact of torch's
implementation the box does not state: it keeps the product of the mu_t in a float32
scalar. tests/grid/test_reference.py holds torch.optim to it on every variant below."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from tests.helpers.optimizers_numpy import Array

VARIANTS = [
    {},
    {"weight_decay": 0.3},
    {"momentum_decay": 0.04, "betas": [0.8, 0.9]},
    {"lr": 0.02, "eps": 1e-3},
]


@dataclass
class NAdam:
    lr: float
    betas: list[float]
    eps: float
    weight_decay: float
    momentum_decay: float
    t: int = 0
    mu_product: np.float32 = field(default_factory=lambda: np.float32(1.0))
    m: Array = field(default_factory=lambda: np.zeros(2))
    v: Array = field(default_factory=lambda: np.zeros(2))

    def step(self, theta: Array, g: Array) -> Array:
        beta1, beta2 = self.betas
        self.t += 1
        if self.weight_decay != 0:
            g = g + self.weight_decay * theta
        mu = beta1 * (1 - 0.5 * 0.96 ** (self.t * self.momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((self.t + 1) * self.momentum_decay))
        self.mu_product = np.float32(self.mu_product * np.float32(mu))
        product = float(self.mu_product)
        self.m = beta1 * self.m + (1 - beta1) * g
        self.v = beta2 * self.v + (1 - beta2) * g**2
        v_hat = self.v / (1 - beta2**self.t)
        m_hat = mu_next * self.m / (1 - product * mu_next) + (1 - mu) * g / (1 - product)
        return theta - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


RULE = NAdam
STATE = {"exp_avg": "m", "exp_avg_sq": "v"}  # torch's names (mu_product: a scalar)


def test_the_first_step_blends_momentum_and_gradient_by_mu() -> None:
    """Step 1 with g = (1, 1): m = (1 - beta1) g, v = (1 - beta2) g^2, and the step is
    lr (mu2 m / (1 - mu1 mu2) + (1 - mu1) g / (1 - mu1)) / (|g| + eps), by hand."""
    rule = NAdam(lr=0.1, betas=[0.9, 0.999], eps=0.0, weight_decay=0.0, momentum_decay=0.004)
    mu1 = 0.9 * (1 - 0.5 * 0.96**0.004)
    mu2 = 0.9 * (1 - 0.5 * 0.96**0.008)
    step = 0.1 * (mu2 * 0.1 / (1 - mu1 * mu2) + 1.0)
    got = rule.step(np.zeros(2), np.ones(2))
    assert got.tolist() == pytest.approx([-step, -step], rel=1e-6)
