"""Log-cosh's oracle: NumPy's log(cosh(d)) and tanh(d); torch's autograd through the plain
formula (the reference module's exact backward must agree with it); Newton's minimiser
against a brute-force search."""

import numpy as np
import pytest
import torch

from pipeline.losses import logcosh

KWARGS: dict[str, float] = {}  # its settings in the closed-form tests (tests/grid)


def test_value_and_derivative_are_log_cosh_and_tanh() -> None:
    """The stable form equals log(cosh(d)) where cosh does not overflow, tanh is its slope,
    sech^2 its curvature (NumPy in float64)."""
    d = np.linspace(-30, 30, 601)
    assert np.allclose(logcosh.LOSS.value(d, {}), np.log(np.cosh(d)), rtol=1e-13, atol=1e-15)
    assert np.array_equal(logcosh.LOSS.derivative(d, {}), np.tanh(d))
    slope = np.gradient(np.tanh(d), d)
    assert np.allclose(logcosh.LOSS.curvature(d, {}), slope, atol=2e-2)


def test_far_from_the_fit_it_grows_like_abs_d() -> None:
    """|d| - log 2 far out, without overflow (cosh(1000) is inf)."""
    assert logcosh.LOSS.value(np.array([1000.0]), {})[0] == pytest.approx(1000 - np.log(2))


def test_the_reference_module_has_autograds_gradient() -> None:
    """LogCoshLoss's exact backward (tanh) equals autograd through log(cosh(d)), in float64,
    for every reduction."""
    x = torch.linspace(-5, 5, 41, dtype=torch.float64)
    for reduction in ("mean", "sum"):
        mine = x.clone().requires_grad_(True)
        logcosh.LOSS.module(reduction=reduction)(mine, torch.zeros_like(x)).backward()
        plain = x.clone().requires_grad_(True)
        value = torch.log(torch.cosh(plain))
        (value.mean() if reduction == "mean" else value.sum()).backward()
        torch.testing.assert_close(mine.grad, plain.grad, rtol=1e-12, atol=1e-15)


def test_newton_finds_the_minimiser_of_a_grid_search() -> None:
    """On noisy data with outliers, no (w, b) on a fine grid around Newton's answer has a
    lower mean log-cosh; at it the gradient vanishes."""
    rng = np.random.default_rng(0)
    x = np.linspace(-2, 2, 20)[None, :]
    y = 2 * x + rng.normal(0, 0.5, x.shape)
    y[0, :3] += 10
    w, b = logcosh.newton(x, y)
    d = w[0] * x + b[0] - y
    assert abs(np.tanh(d).mean()) < 1e-12 and abs((np.tanh(d) * x).mean()) < 1e-12
    ws, bs = np.meshgrid(w[0] + np.linspace(-0.1, 0.1, 41), b[0] + np.linspace(-0.1, 0.1, 41))
    grid = np.abs(ws[..., None] * x[0] + bs[..., None] - y[0])
    values = (grid + np.log1p(np.exp(-2 * grid)) - np.log(2)).mean(axis=-1)
    best = np.abs(d) + np.log1p(np.exp(-2 * np.abs(d))) - np.log(2)
    assert values.min() >= best.mean() - 1e-14
