"""AdamW's oracle: torch.optim.AdamW's box, Adam with decoupled weight decay
(tests/optimizers/test_adam.py's rule): theta shrinks by lr * wd before the update."""

from functools import partial

import numpy as np
import pytest

from tests.optimizers.test_adam import Adam

VARIANTS = [
    {},
    {"weight_decay": 0.3},
    {"amsgrad": True, "betas": [0.8, 0.9]},
    {"amsgrad": True, "weight_decay": 0.1, "eps": 1e-3, "lr": 0.1},
]
RULE = partial(Adam, decoupled=True)
STATE = {"exp_avg": "m", "exp_avg_sq": "v", "max_exp_avg_sq": "v_max"}


def test_weight_decay_shrinks_theta_and_leaves_g_alone() -> None:
    """With g = 0 the step is theta (1 - lr wd), by hand."""
    rule = RULE(lr=0.1, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.5, amsgrad=False)
    assert rule.step(np.array([2.0, -4.0]), np.zeros(2)).tolist() == pytest.approx([1.9, -3.8])
