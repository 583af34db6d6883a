"""No clipping: the gradients stay as backward() left them."""

import torch

from pipeline.clips import CLIPS
from tests.helpers.gradients import random_params


def test_gradients_are_left_alone() -> None:
    """none's reference leaves every .grad bit for bit."""
    params = random_params([(2,), (3, 1)], 0, 100.0)
    before = [p.grad.clone() for p in params]
    CLIPS["none"].reference(params, {})
    assert all(torch.equal(p.grad, b) for p, b in zip(params, before, strict=True))
