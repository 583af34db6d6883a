"""Huber's oracle: torch.nn.HuberLoss, and where its minimiser is not unique."""

import numpy as np
import torch

from pipeline.losses import huber

KWARGS = {"delta": 1.3}  # away from 1, so a missing delta would show (tests/grid)


def test_value_and_derivative_are_torchs_on_both_sides_of_delta() -> None:
    """Quadratic while |d| < delta, linear beyond: torch's HuberLoss and its autograd."""
    d = torch.tensor([-3.0, -1.3, -0.5, 0.0, 1.29, 1.31, 4.0], dtype=torch.float64)
    d.requires_grad_(True)
    value = torch.nn.HuberLoss(reduction="none", delta=1.3)(d, torch.zeros_like(d))
    value.sum().backward()
    assert np.allclose(huber.LOSS.value(d.detach().numpy(), KWARGS), value.detach().numpy())
    assert np.allclose(huber.LOSS.derivative(d.detach().numpy(), KWARGS), d.grad.numpy())


def test_uniqueness_needs_two_points_in_the_quadratic_zone() -> None:
    """Every point in the zone: Huber is least squares there, one minimiser; every point
    beyond it (a line far away): the loss is linear nearby, flat along a direction."""
    x, y = np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([[0.0, 3.0, 1.0, 5.0]])
    w, b = huber.newton(x, y, 100.0)
    assert huber.LOSS.unique(x, y, w, b, {"delta": 100.0})[0]
    far = huber.unique_within(x, y, np.array([0.0]), np.array([100.0]), 1.0)
    assert not far[0]
