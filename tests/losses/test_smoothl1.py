"""Smooth L1's oracle: torch.nn.SmoothL1Loss, Huber's loss divided by beta."""

import numpy as np
import torch

from pipeline.losses import huber, smoothl1

KWARGS = {"beta": 0.7}  # away from 1, so a missing beta would show (tests/grid)


def test_value_and_derivative_are_torchs() -> None:
    """d^2 / (2 beta) while |d| < beta, |d| - beta / 2 beyond: torch's SmoothL1Loss."""
    d = torch.tensor([-3.0, -0.7, -0.2, 0.0, 0.69, 0.71, 4.0], dtype=torch.float64)
    d.requires_grad_(True)
    value = torch.nn.SmoothL1Loss(reduction="none", beta=0.7)(d, torch.zeros_like(d))
    value.sum().backward()
    assert np.allclose(smoothl1.LOSS.value(d.detach().numpy(), KWARGS), value.detach().numpy())
    assert np.allclose(smoothl1.LOSS.derivative(d.detach().numpy(), KWARGS), d.grad.numpy())


def test_it_is_huber_over_beta() -> None:
    """Smooth L1 with beta equals Huber with delta = beta, divided by beta."""
    d = np.linspace(-3, 3, 61)
    want = huber.LOSS.value(d, {"delta": 0.7}) / 0.7
    assert np.allclose(smoothl1.LOSS.value(d, KWARGS), want, rtol=1e-14, atol=1e-15)
