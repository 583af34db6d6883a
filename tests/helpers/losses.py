"""The oracle checks every smooth loss torch.nn lacks owes (pipeline.losses.pointwise):
torch's autograd through the plain formula as the oracle of its closed forms and of its
module's exact backward, and SciPy's minimiser and a grid search as Newton's."""

from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import minimize

from pipeline.losses.spec import Loss

Plain = Callable[[torch.Tensor], torch.Tensor]  # the loss's formula, elementwise, in torch


def autograd_terms(plain: Plain, d: np.ndarray) -> tuple[np.ndarray, ...]:
    """(l(d), l'(d), l''(d)) of `plain` per element, in float64, by autograd (twice)."""
    t = torch.tensor(d, dtype=torch.float64, requires_grad=True)
    value = plain(t)
    (slope,) = torch.autograd.grad(value.sum(), t, create_graph=True)
    (curvature,) = torch.autograd.grad(slope.sum(), t)
    return value.detach().numpy(), slope.detach().numpy(), curvature.numpy()


def assert_closed_forms_are_autograds(loss: Loss, plain: Plain, d: np.ndarray) -> None:
    """The loss's value, derivative and curvature equal autograd's through `plain`, to
    1e-14 relative (float64: one formula against another, a few roundings apart)."""
    value, slope, curvature = autograd_terms(plain, d)
    for name, want in (("value", value), ("derivative", slope), ("curvature", curvature)):
        got = getattr(loss, name)(d, {})
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-300, err_msg=name)


def assert_module_has_autograds_gradient(loss: Loss, plain: Plain, d: np.ndarray) -> None:
    """The loss's reference module (its exact backward) gives autograd's gradient through
    `plain`, in float64, for every reduction, and its forward the plain formula's value."""
    assert loss.module is not None
    x = torch.tensor(d, dtype=torch.float64)
    for reduction in ("mean", "sum", "none"):
        mine = x.clone().requires_grad_(True)
        value = loss.module(reduction=reduction)(mine, torch.zeros_like(x))
        value.sum().backward()
        ours = plain(x.clone().requires_grad_(True))
        reduced = {"mean": ours.mean(), "sum": ours.sum(), "none": ours}[reduction]
        torch.testing.assert_close(value, reduced, rtol=1e-13, atol=1e-300)
        plain_input = x.clone().requires_grad_(True)
        again = plain(plain_input)
        {"mean": again.mean(), "sum": again.sum(), "none": again.sum()}[reduction].backward()
        torch.testing.assert_close(mine.grad, plain_input.grad, rtol=1e-13, atol=1e-300)


def mean_loss(loss: Loss, x: np.ndarray, y: np.ndarray, w, b) -> np.ndarray:
    """The mean loss of the lines (w, b) (any shape) on one dataset x, y."""
    w, b = np.asarray(w)[..., None], np.asarray(b)[..., None]
    return loss.value(w * x + b - y, {}).mean(axis=-1)


def assert_newton_is_the_minimiser(loss: Loss, x: np.ndarray, y: np.ndarray) -> None:
    """On each row of x, y: the gradient at the solver's answer vanishes (relative to the
    points' slopes), SciPy's BFGS from a point nearby finds the same line within 1e-7,
    and no line of a fine grid around it has a lower mean loss."""
    w, b = loss.solve(x, y, {})
    for r in range(x.shape[0]):
        d = w[r] * x[r] + b[r] - y[r]
        g = loss.derivative(d, {})
        size = np.abs(g).mean() * (1 + np.abs(x[r]).max())
        assert abs((g * x[r]).mean()) <= 1e-12 * size and abs(g.mean()) <= 1e-12 * size

        def objective(p: np.ndarray, r: int = r) -> tuple[float, np.ndarray]:
            g = loss.derivative(p[0] * x[r] + p[1] - y[r], {})
            return float(mean_loss(loss, x[r], y[r], *p)), np.array([(g * x[r]).mean(), g.mean()])

        found = minimize(objective, [w[r] + 0.3, b[r] - 0.3], jac=True, method="BFGS", tol=1e-14)
        np.testing.assert_allclose(found.x, [w[r], b[r]], atol=1e-7)
        step = 1e-4 * (1 + abs(w[r]) + abs(b[r]))
        ws, bs = np.meshgrid(w[r] + step * np.arange(-20, 21), b[r] + step * np.arange(-20, 21))
        best = mean_loss(loss, x[r], y[r], w[r], b[r])
        assert mean_loss(loss, x[r], y[r], ws, bs).min() >= best * (1 - 1e-14)
