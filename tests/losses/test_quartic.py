"""The quartic loss's oracle: torch's autograd through d^4 for its closed forms and its
module's exact backward; its (L0, L1)-smoothness constants; Newton's minimiser against
SciPy and a grid search, an exact fit included."""

import numpy as np
import pytest
import torch

from pipeline.losses import quartic
from tests.helpers import losses as checks

KWARGS: dict[str, float] = {}  # its settings in the closed-form tests (tests/grid)


def plain(d: torch.Tensor) -> torch.Tensor:
    return d**4


def test_value_derivative_and_curvature_are_autograds_of_d_to_the_4() -> None:
    """d^4, 4 d^3 and 12 d^2 equal autograd's value, first and second derivative of d^4."""
    d = np.concatenate([np.linspace(-30, 30, 601), [1e-30, -1e-7, 1e30]])
    checks.assert_closed_forms_are_autograds(quartic.LOSS, plain, d)


def test_the_reference_module_has_autograds_gradient() -> None:
    """QuarticLoss's exact backward equals autograd through d^4, for every reduction."""
    checks.assert_module_has_autograds_gradient(quartic.LOSS, plain, np.linspace(-5, 5, 41))


@pytest.mark.parametrize("l1", [0.25, 1.0, 3.0, 4.0])
def test_curvature_is_bounded_by_l0_plus_l1_times_the_slope(l1: float) -> None:
    """12 d^2 <= L0 + L1 |4 d^3| with L0 = 16 / L1^2 (the docstring's constants) at every d,
    with equality at |d| = 2 / L1: a smaller L0 fails there."""
    d = np.concatenate([np.linspace(-100, 100, 200_001), [2 / l1, -2 / l1]])
    curvature = quartic.LOSS.curvature(d, {})
    slope = np.abs(quartic.LOSS.derivative(d, {}))
    l0 = 16 / l1**2

    assert np.all(curvature <= (l0 + l1 * slope) * (1 + 1e-12))
    tight = np.abs(np.abs(d) - 2 / l1) < 1e-12
    assert np.all(curvature[tight] > (0.999 * l0 + l1 * slope[tight]))


def test_newton_finds_the_minimiser_of_scipy_and_a_grid_search() -> None:
    """On noisy data with outliers (the quartic chases them), on large |x| and on
    heavy-tailed noise, Newton's line is SciPy's and no nearby line is lower."""
    rng = np.random.default_rng(0)
    x = np.vstack([np.linspace(-2, 2, 20), np.linspace(-20, 20, 20), np.linspace(-2, 2, 20)])
    y = 2 * x + rng.normal(0, 0.5, x.shape)
    y[0, :3] += 10
    y[2] = 2 * x[2] + 0.3 * rng.standard_t(1.5, 20)
    checks.assert_newton_is_the_minimiser(quartic.LOSS, x, y)


def test_an_exact_fit_is_the_minimiser_though_the_hessian_vanishes_there() -> None:
    """y = 2x: (2, 0) exactly (every error 0: no curvature, no Newton step)."""
    x, y = np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 4.0, 6.0]])

    w, b = quartic.newton(x, y)

    assert (w[0], b[0]) == (2.0, 0.0)
    assert quartic.LOSS.unique(x, y, w, b, {}).all()


def test_a_minimiser_that_fits_one_x_of_two_exactly_is_found_to_the_losss_rounding() -> None:
    """Three points at x = 1 and one at x = 2: the minimiser passes through (2, 5) and
    through v at x = 1 with sum (v - y_i)^3 = 0, where the Hessian is singular (curvature
    at x = 1 only) and the loss flat to 4th order along one direction: Newton stops
    within 1e-4 of it (where the gradient drowns in rounding), at the same float64 loss."""
    x, y = np.array([[1.0, 1.0, 1.0, 2.0]]), np.array([[0.0, 1.0, 3.0, 5.0]])
    cubic = np.poly1d([3.0, -12.0, 30.0, -28.0])  # sum (v - y_i)^3 over y_i = 0, 1, 3
    (v,) = np.real(cubic.roots[np.abs(cubic.roots.imag) < 1e-12])  # increasing: one root

    w, b = quartic.newton(x, y)

    np.testing.assert_allclose([w[0], b[0]], [5.0 - v, 2 * v - 5.0], atol=1e-4)
    best = checks.mean_loss(quartic.LOSS, x[0], y[0], 5.0 - v, 2 * v - 5.0)
    assert checks.mean_loss(quartic.LOSS, x[0], y[0], w[0], b[0]) <= best * (1 + 1e-15)


def test_the_term_overflows_float32_past_4_3e9() -> None:
    """d^4 in float32 is finite at 4.2e9 and inf at 4.4e9 (where a cell stops, diverged)."""
    d = torch.tensor([4.2e9, 4.4e9], dtype=torch.float32)
    value = quartic.LOSS.module(reduction="none")(d, torch.zeros_like(d))
    assert torch.isfinite(value).tolist() == [True, False]
