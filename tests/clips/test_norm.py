"""Clipping by norm, torch.nn.utils.clip_grad_norm_: against a NumPy rule of its docs."""

import math

import numpy as np
import pytest

from pipeline.clips import CLIPS
from tests.helpers.gradients import NORM_TYPES, SHAPES, random_params


@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("shapes", SHAPES)
def test_the_gradients_scale_by_max_norm_over_their_total_norm(norm_type, shapes) -> None:
    """g * min(1, max_norm / (||g||_p + 1e-6)), the p-norm over every gradient together."""
    params = random_params(shapes, 1, 10.0)
    g = np.concatenate([p.grad.numpy().ravel() for p in params]).astype(np.float64)
    total = (
        np.abs(g).max()
        if math.isinf(norm_type)
        else (np.abs(g) ** norm_type).sum() ** (1 / norm_type)
    )
    want = g * min(1.0, 1.0 / (total + 1e-6))
    CLIPS["norm"].reference(params, {"max_norm": 1.0, "norm_type": norm_type})
    got = np.concatenate([p.grad.numpy().ravel() for p in params])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
