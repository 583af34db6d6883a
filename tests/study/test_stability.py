"""Oracle tests of the stability edges: torch.optim.SGD itself converges just below each
edge and diverges just above it; the Hessian matches finite differences."""

import math

import numpy as np
import pytest
import torch

from pipeline.grid import model
from pipeline.losses import LOSSES
from pipeline.params import LossName, OptimizerName
from pipeline.study import minimiser, stability

Hyper = dict[str, float]
MARGIN = 1e-3  # lr = edge * (1 -+ MARGIN)
STEPS = 20_000
TUTORIAL = (np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]))
NOISE = np.random.default_rng(0).normal(0, 0.5, 20)
LINE = (np.linspace(-2, 2, 20), 2 * np.linspace(-2, 2, 20) + NOISE)
CONFIGS: list[tuple[OptimizerName, Hyper]] = [
    ("sgd", {"weight_decay": 0.0}),
    ("sgd", {"weight_decay": 0.5}),
    ("momentum", {"momentum": 0.5, "dampening": 0.0, "weight_decay": 0.0}),
    ("momentum", {"momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0}),
    ("momentum", {"momentum": 0.99, "dampening": 0.0, "weight_decay": 0.0}),
    ("momentum", {"momentum": 0.9, "dampening": 0.5, "weight_decay": 0.0}),
    ("momentum", {"momentum": 0.7, "dampening": 0.3, "weight_decay": 0.2}),
    ("momentum", {"momentum": 0.0, "dampening": 0.5, "weight_decay": 0.0}),  # torch: plain SGD
    ("nesterov", {"momentum": 0.5, "weight_decay": 0.0}),
    ("nesterov", {"momentum": 0.9, "weight_decay": 0.0}),
    ("nesterov", {"momentum": 0.99, "weight_decay": 0.0}),
    ("nesterov", {"momentum": 0.9, "weight_decay": 0.5}),
]


def config_id(config: tuple[OptimizerName, Hyper]) -> str:
    name, hyper = config
    return "-".join([name, *(f"{k[0]}{v}" for k, v in hyper.items() if v)])


def growth(
    optimizer: OptimizerName,
    hyper: Hyper,
    lr: float,
    loss: LossName,
    kwargs: dict[str, float],
    data: tuple[np.ndarray, np.ndarray],
    start: np.ndarray,
    target: np.ndarray,
) -> float:
    """|p - target| / |start - target| after torch.optim's own steps (built by
    model.make_optimizer, float64), stopped once below 1e-3 or above 1e3."""
    x, y = (torch.tensor(v, dtype=torch.float64) for v in data)
    w, b = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in start)
    opt = model.make_optimizer(optimizer, {**hyper, "lr": lr}, [w, b])
    criterion = model.make_loss(loss, kwargs)
    first = float(np.hypot(*(start - target)))
    ratio = 1.0
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        criterion(w * x + b, y).backward()
        opt.step()
        if step % 25 == 0:
            ratio = math.hypot(w.item() - target[0], b.item() - target[1]) / first
            if not 1e-3 <= ratio <= 1e3:  # nan too: diverged past overflow
                return ratio if math.isfinite(ratio) else math.inf
    return ratio


def fixed_point(h: np.ndarray, optimum: np.ndarray, decay: float) -> np.ndarray:
    """Where SGD with weight decay settles on the quadratic H (p - p*): (H + lam I)^-1 H p*."""
    return np.linalg.solve(h + decay * np.eye(2), h @ optimum)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
@pytest.mark.parametrize("data", [TUTORIAL, LINE], ids=["tutorial", "line"])
def test_torch_sgd_converges_below_the_mse_edge_and_diverges_above(
    config: tuple[OptimizerName, Hyper], data: tuple[np.ndarray, np.ndarray]
) -> None:
    """At edge * (1 - 1e-3) torch's SGD shrinks the distance to its fixed point a
    thousandfold; at edge * (1 + 1e-3) it grows it a thousandfold."""
    optimizer, hyper = config
    optimum = np.array(minimiser.minimiser("mse", {}, *data))
    h = stability.hessian("mse", {}, *data, *optimum)
    lr = stability.edge(optimizer, hyper, float(stability.lam_max(h)))
    target = fixed_point(h, optimum, hyper["weight_decay"])
    start = target + np.array([0.6, -0.8])

    below = growth(optimizer, hyper, lr * (1 - MARGIN), "mse", {}, data, start, target)
    above = growth(optimizer, hyper, lr * (1 + MARGIN), "mse", {}, data, start, target)

    assert below < 1e-3 and above > 1e3


@pytest.mark.parametrize("loss, kwargs", [("huber", {"delta": 1.0}), ("smoothl1", {"beta": 0.5})])
@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[3], CONFIGS[9]], ids=config_id)
def test_the_edge_holds_inside_the_quadratic_zone(
    loss: LossName, kwargs: dict[str, float], config: tuple[OptimizerName, Hyper]
) -> None:
    """Small residuals plus two far outliers (linear zone, no curvature): started 1e-6
    from the minimiser, torch's SGD stays in the zone and obeys the zone's edge."""
    optimizer, hyper = config
    x = np.linspace(-2, 2, 20)
    y = 2 * x + 0.3 + 0.05 * np.sin(7 * x)
    y[[3, 15]] += [8.0, -6.0]
    optimum = np.array(minimiser.minimiser(loss, kwargs, x, y))
    h = stability.hessian(loss, kwargs, x, y, *optimum)
    assert np.count_nonzero(np.abs(optimum[0] * x + optimum[1] - y) < 0.25) == 18
    lr = stability.edge(optimizer, hyper, float(stability.lam_max(h)))
    start = optimum + 1e-6 * np.array([0.6, -0.8])

    below = growth(optimizer, hyper, lr * (1 - MARGIN), loss, kwargs, (x, y), start, optimum)
    above = growth(optimizer, hyper, lr * (1 + MARGIN), loss, kwargs, (x, y), start, optimum)

    assert below < 1e-3 and above > 1e3


def step_matrix(nesterov: bool, lr: float, a: float, mu: float, tau: float) -> np.ndarray:
    """torch's SGD step (after the first) on f = a p^2 / 2 as a linear map of (p, buf),
    built by applying the update, as written in torch/optim/sgd.py, to a basis."""
    columns = []
    for p, buf in [(1.0, 0.0), (0.0, 1.0)]:
        grad = a * p
        buf = mu * buf + (1 - tau) * grad
        p -= lr * (grad + mu * buf if nesterov else buf)
        columns.append([p, buf])
    return np.array(columns).T


@pytest.mark.parametrize("mu", [0.1, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("tau", [0.0, 0.4, 0.9])
@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_the_spectral_radius_crosses_one_at_the_edge(
    optimizer: OptimizerName, mu: float, tau: float
) -> None:
    """The step matrix's spectral radius is < 1 on a grid of lr below the edge and > 1
    just above (also Nesterov with dampening, which torch refuses to run)."""
    a, decay = 3.7, 0.3
    lr = stability.edge(
        optimizer, {"momentum": mu, "dampening": tau, "weight_decay": decay}, a - decay
    )

    def radius(step: float) -> float:
        return float(
            np.abs(np.linalg.eigvals(step_matrix(optimizer == "nesterov", step, a, mu, tau))).max()
        )

    assert all(radius(lr * f) < 1 for f in np.linspace(1e-3, 1 - 1e-6, 300))
    assert radius(lr * (1 + 1e-6)) > 1


def test_edges_for_plain_sgd_without_curvature_and_adaptive_optimizers() -> None:
    """2 / lam_max; inf with no curvature at all; nan for Adam (no closed form)."""
    assert stability.edge("sgd", {}, 4.0) == 0.5
    assert stability.edge("sgd", {"weight_decay": 1.0}, 3.0) == 0.5
    assert stability.edge("sgd", {}, 0.0) == math.inf
    assert math.isnan(stability.edge("adam", {"weight_decay": 0.0}, 4.0))
    got = stability.edge("nesterov", {"momentum": 0.5}, np.array([1.0, 2.0]))
    np.testing.assert_allclose(got, [1.5, 0.75], rtol=1e-15)


def finite_difference_hessian(loss: LossName, kwargs: dict[str, float], x, y, p, step=1e-4):
    def f(q: np.ndarray) -> float:
        return float(LOSSES[loss].value(q[0] * x + q[1] - y, kwargs).mean())

    h = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = step * np.eye(2)[i], step * np.eye(2)[j]
            h[i, j] = (f(p + ei + ej) - f(p + ei - ej) - f(p - ei + ej) + f(p - ei - ej)) / (
                4 * step**2
            )
    return h


@pytest.mark.parametrize(
    "loss, kwargs",
    [("mse", {}), ("huber", {"delta": 0.8}), ("smoothl1", {"beta": 0.6}), ("l1", {})],
)
def test_hessian_equals_finite_differences_at_the_minimiser(
    loss: LossName, kwargs: dict[str, float]
) -> None:
    """The Hessian matches central differences of closed_form's loss to 1e-6 (at the
    minimiser; L1's kinks sit there, so L1 is taken beside it, where H = 0)."""
    x = np.linspace(-2, 2, 20)
    y = 2 * x + 0.3 + 0.2 * np.sin(5 * x)
    y[[4, 11]] += [5.0, -4.0]  # two points in the linear zone
    p = np.array(minimiser.minimiser(loss, kwargs, x, y)) + (0.0123 if loss == "l1" else 0.0)

    got = stability.hessian(loss, kwargs, x, y, *p)

    np.testing.assert_allclose(got, finite_difference_hessian(loss, kwargs, x, y, p), atol=1e-6)
    curvature = {"mse": 2.0, "huber": 1.0, "smoothl1": 1 / 0.6, "l1": 0.0}[loss]
    inside = 20 if loss == "mse" else 18  # the two outliers add no curvature
    assert got[1, 1] == pytest.approx(inside / 20 * curvature, rel=1e-14, abs=1e-300)


SMOOTH = ["logcosh", "quartic", "cosh"]  # losses torch.nn lacks, curvature everywhere


@pytest.mark.parametrize("loss", SMOOTH)
def test_hessian_of_the_smooth_losses_equals_finite_differences(loss: LossName) -> None:
    """At the minimiser, on data with two outliers, the Hessian from each smooth loss's
    curvature matches central differences of its loss to 1e-5 relative."""
    x = np.linspace(-2, 2, 20)
    y = 2 * x + 0.3 + 0.2 * np.sin(5 * x)
    y[[4, 11]] += [5.0, -4.0]
    p = np.array(minimiser.minimiser(loss, {}, x, y))

    got = stability.hessian(loss, {}, x, y, *p)

    np.testing.assert_allclose(got, finite_difference_hessian(loss, {}, x, y, p), rtol=1e-5)


@pytest.mark.parametrize("loss", SMOOTH)
@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[3], CONFIGS[9]], ids=config_id)
def test_the_edge_holds_next_to_the_minimiser_of_the_smooth_losses(
    loss: LossName, config: tuple[OptimizerName, Hyper]
) -> None:
    """On a noisy line, started 1e-6 from the minimiser, torch's SGD with the loss's own
    module shrinks the distance a thousandfold just below the edge of its Hessian there
    and grows it a thousandfold just above (the curvature changes away from the fit only
    beyond that)."""
    optimizer, hyper = config
    optimum = np.array(minimiser.minimiser(loss, {}, *LINE))
    h = stability.hessian(loss, {}, *LINE, *optimum)
    lr = stability.edge(optimizer, hyper, float(stability.lam_max(h)))
    start = optimum + 1e-6 * np.array([0.6, -0.8])

    below = growth(optimizer, hyper, lr * (1 - MARGIN), loss, {}, LINE, start, optimum)
    above = growth(optimizer, hyper, lr * (1 + MARGIN), loss, {}, LINE, start, optimum)

    assert below < 1e-3 and above > 1e3


def test_hessian_and_lam_max_are_batched() -> None:
    """Rows of (w, b) give a stack of Hessians; lam_max equals numpy's eigvalsh on each."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    w, b = rng.normal(size=50), rng.normal(size=50)

    h = stability.hessian("huber", {"delta": 1.0}, x, y, w, b)

    assert h.shape == (50, 2, 2)
    np.testing.assert_allclose(
        h[7], stability.hessian("huber", {"delta": 1.0}, x[7], y[7], w[7], b[7])
    )
    np.testing.assert_allclose(
        stability.lam_max(h), np.linalg.eigvalsh(h)[:, -1], rtol=1e-13, atol=1e-15
    )
