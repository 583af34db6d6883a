"""The cosh loss's oracle: torch's autograd through cosh(d) - 1 for its closed forms and its
module's exact backward; its (L0, L1)-smoothness constants; where it overflows; Newton's
minimiser against SciPy and a grid search, from far and past overflow."""

import numpy as np
import pytest
import torch

from pipeline.losses import cosh
from tests.helpers import losses as checks

KWARGS: dict[str, float] = {}  # its settings in the closed-form tests (tests/grid)


def plain(d: torch.Tensor) -> torch.Tensor:
    return torch.cosh(d) - 1


def test_value_derivative_and_curvature_are_autograds_of_cosh_minus_1() -> None:
    """cosh(d) - 1, sinh(d) and cosh(d) equal autograd's value, first and second
    derivative of cosh(d) - 1 (away from 0, where the plain formula cancels)."""
    d = np.concatenate([np.linspace(-700, -0.5, 300), np.linspace(0.5, 700, 300)])
    checks.assert_closed_forms_are_autograds(cosh.LOSS, plain, d)


def test_near_the_fit_the_term_is_d_squared_over_2_without_cancellation() -> None:
    """At |d| <= 1e-3 the term is its series d^2 / 2 + d^4 / 24 + d^6 / 720 to 1e-15
    relative (cosh(d) - 1 itself is 0 below 1e-8)."""
    d = np.array([1e-3, -1e-5, 1e-9, -1e-150])

    got = cosh.LOSS.value(d, {})

    np.testing.assert_allclose(got, d**2 / 2 + d**4 / 24 + d**6 / 720, rtol=1e-15)
    assert np.cosh(1e-9) - 1 == 0.0


def test_the_reference_module_has_autograds_gradient() -> None:
    """CoshLoss's exact backward equals autograd through cosh(d) - 1, every reduction."""
    checks.assert_module_has_autograds_gradient(cosh.LOSS, plain, np.linspace(-5, 5, 41))


def test_curvature_is_bounded_by_1_plus_the_slope_and_no_less() -> None:
    """cosh(d) <= 1 + |sinh(d)| at every d (L0 = L1 = 1); neither constant can shrink:
    L0 is attained at d = 0, and L1 < 1 fails far out."""
    d = np.linspace(-700, 700, 1_400_001)
    curvature = cosh.LOSS.curvature(d, {})
    slope = np.abs(cosh.LOSS.derivative(d, {}))

    assert np.all(curvature <= (1 + slope) * (1 + 1e-15))
    assert cosh.LOSS.curvature(np.array([0.0]), {})[0] == 1.0
    assert np.any(curvature > 1 + 0.99 * slope)
    assert curvature[-1] > 1 + 0.999 * slope[-1] + 0.999  # not even with L0 just below 1


@pytest.mark.parametrize(
    "dtype, finite, overflows",
    [(torch.float32, 89.0, 89.5), (torch.float64, 710.0, 710.6)],
)
def test_the_term_and_its_gradient_overflow_where_cosh_does(dtype, finite, overflows) -> None:
    """In float32 the term and its slope are finite at |d| = 89 and inf at 89.5 (float64:
    710 and 710.6), as torch's cosh and sinh: where a cell stops, diverged."""
    d = torch.tensor([finite, -finite, overflows, -overflows], dtype=dtype, requires_grad=True)
    value = cosh.LOSS.module(reduction="none")(d, torch.zeros_like(d))
    value.sum().backward()
    assert torch.isfinite(value).tolist() == [True, True, False, False]
    assert torch.isfinite(d.grad).tolist() == [True, True, False, False]
    assert torch.isinf(torch.cosh(d.detach()[2:])).all()


def test_newton_finds_the_minimiser_of_scipy_and_a_grid_search() -> None:
    """On noisy data with outliers, large |x| and heavy-tailed noise (errors of ~40: the
    loss near e^40), Newton's line is SciPy's and no nearby line is lower."""
    rng = np.random.default_rng(0)
    x = np.vstack([np.linspace(-2, 2, 40), np.linspace(-20, 20, 40), np.linspace(-2, 2, 40)])
    y = 2 * x + rng.normal(0, 0.5, x.shape)
    y[0, :3] += 10
    y[2] = 2 * x[2] + 0.3 * rng.standard_t(1.5, 40)
    assert np.abs(y[2] - 2 * x[2]).max() > 10
    checks.assert_newton_is_the_minimiser(cosh.LOSS, x, y)


def test_an_outlier_hundreds_away_is_reached_and_one_past_overflow_is_refused() -> None:
    """One point 600 above the line y = 2x: Newton, about 1 a step from least squares,
    settles where the outlier's pull balances (its error ~290, cosh ~1e126); an offset that
    overflows cosh at the least-squares line is an ArithmeticError naming cosh."""
    x = np.linspace(-2, 2, 20)[None, :]
    y = 2 * x
    y[0, 3] += 600

    w, b = cosh.newton(x, y)

    d = w[0] * x[0] + b[0] - y[0]
    assert 250 < -d[3] < 350
    g = cosh.LOSS.derivative(d, {})
    assert abs(g.mean()) < 1e-12 * np.abs(g).mean()
    y[0, 3] += 1e4
    with pytest.raises(ArithmeticError, match="cosh minimiser: the loss overflows float64"):
        cosh.newton(x, y)
