"""Clipping by value by hand: against torch.nn.utils.clip_grad_value_ (the oracle)."""

import pytest
import torch

from pipeline.clips import handvalue
from tests.helpers.gradients import SHAPES, clone, random_params


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("clip_value", [0.1, 0.5, 100.0])
def test_hand_value_clipping_matches_torch(shapes, clip_value) -> None:
    """clip_value_ clamps exactly like clip_grad_value_."""
    ours = random_params(shapes, 3, 1.0)
    theirs = clone(ours)
    handvalue.clip_([p.grad for p in ours], clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)
