"""Clipping by value, torch.nn.utils.clip_grad_value_: each element into [-c, c]."""

import numpy as np
import pytest

from pipeline.clips import CLIPS
from tests.helpers.gradients import SHAPES, random_params


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("clip_value", [0.1, 0.5, 100.0])
def test_every_element_is_clamped(shapes, clip_value) -> None:
    """np.clip of each gradient, bit for bit."""
    params = random_params(shapes, 3, 1.0)
    want = [np.clip(p.grad.numpy(), -clip_value, clip_value) for p in params]
    CLIPS["value"].reference(params, {"clip_value": clip_value})
    assert all(np.array_equal(p.grad.numpy(), w) for p, w in zip(params, want, strict=True))
