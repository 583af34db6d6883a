"""The rate map's closed form and the measured rate (pipeline.explorer.rates): the spectral
radius against the step matrix torch.optim.SGD itself applies, the stability edge where it
reaches 1, and the measured rate against runs of known rate."""

import math

import numpy as np
import pytest
import torch

from pipeline.explorer import rates
from pipeline.grid import reference
from pipeline.optimizers import sgd
from tests.grid.test_reference import _sgd_on_mse  # the tutorial's set-up: MSE, plain SGD

CASES = [  # (c = lr * eigenvalue, momentum, dampening, nesterov)
    (0.05, 0.0, 0.0, False), (1.7, 0.0, 0.0, False), (2.4, 0.0, 0.0, False),
    (0.05, 0.9, 0.0, False), (0.5, 0.5, 0.0, False), (3.9, 0.95, 0.0, False),
    (0.3, 0.6, 0.4, False), (0.05, 0.9, 0.0, True), (1.2, 0.5, 0.0, True), (1.9, 0.8, 0.0, True),
]  # fmt: skip


def torch_step_matrix(c: float, mu: float, dampening: float, nesterov: bool) -> np.ndarray:
    """The 2x2 linear map torch.optim.SGD applies to (error, momentum buffer) on the 1-D
    quadratic f(p) = c p^2 / 2 with lr 1, found by stepping it from each basis state."""
    columns = []
    for start in ([1.0, 0.0], [0.0, 1.0]):
        p = torch.nn.Parameter(torch.tensor([start[0]], dtype=torch.float64))
        opt = torch.optim.SGD([p], lr=1.0, momentum=mu, dampening=dampening, nesterov=nesterov)
        p.grad = torch.zeros_like(p)
        opt.step()  # creates the buffer (= grad = 0), moves nothing
        with torch.no_grad():
            p.copy_(torch.tensor([start[0]]))
        opt.state[p]["momentum_buffer"] = torch.tensor([start[1]], dtype=torch.float64)
        p.grad = c * p.detach().clone()
        opt.step()
        columns.append([p.item(), opt.state[p]["momentum_buffer"].item()])
    return np.array(columns).T


@pytest.mark.parametrize(("c", "mu", "dampening", "nesterov"), CASES)
def test_the_radius_is_that_of_torchs_own_step_matrix(
    c: float, mu: float, dampening: float, nesterov: bool
) -> None:
    """radius() equals the largest |eigenvalue| of the map torch.optim.SGD applies (1e-12)."""
    if mu == 0:
        want = abs(1 - c)  # no buffer: p - c p
    else:
        want = np.abs(np.linalg.eigvals(torch_step_matrix(c, mu, dampening, nesterov))).max()

    assert float(rates.radius(c, mu, nesterov, dampening)) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("mu", [0.0, 0.3, 0.9, 0.99])
def test_the_rate_is_one_at_the_stability_edge(nesterov: bool, mu: float) -> None:
    """At sgd.edge's lr the rate is 1 (1e-9); 1% inside it < 1, 1% beyond it > 1."""
    eigen = (0.24, 11.09)  # the tutorial's MSE Hessian, roughly
    edge = sgd.edge({"momentum": mu}, eigen[1], nesterov=nesterov)

    at = [float(rates.rate(edge * f, mu, eigen, nesterov)) for f in (0.99, 1.0, 1.01)]

    assert at[0] < 1 and at[1] == pytest.approx(1.0, abs=1e-9) and at[2] > 1
    assert edge * eigen[1] == pytest.approx(rates.edge_factor(mu, nesterov))


def test_arrays_of_settings_give_each_its_rate() -> None:
    """rate() over arrays of lr, momentum and eigenvalues is the rate of each, one by one."""
    lr, mu = np.array([0.01, 0.1, 0.5]), np.array([0.0, 0.9, 0.5])
    eigen = [np.array([0.2, 1.0, 0.5]), np.array([3.0, 4.0, 2.0])]

    got = rates.rate(lr, mu, eigen, False, 0.0, np.array([0.0, 0.1, 0.0]))

    one = [rates.rate(lr[i], mu[i], (eigen[0][i], eigen[1][i]), False, 0.0, [0.0, 0.1, 0.0][i])
           for i in range(3)]  # fmt: skip
    np.testing.assert_allclose(got, np.array(one, dtype=float), rtol=0, atol=0)


def test_a_geometric_error_measures_its_ratio_and_a_divergence_its_growth() -> None:
    """errors r^t measure r, before the floor and whatever the start; growth until a stop
    (nan) measures the growth; a run at the floor from the start measures nothing."""
    t = np.arange(501)
    shrink, grow = 3.0 * 0.9**t, np.where(t < 80, 0.5 * 1.2**t, np.nan)

    got = rates.measured(np.stack([shrink, grow, np.full(501, 1e-9)]), [1e-6, 1e-6, 1e-6])

    assert got[0] == pytest.approx(0.9, rel=1e-12) and got[1] == pytest.approx(1.2, rel=1e-12)
    assert math.isnan(got[2])


def test_a_reference_run_of_sgd_on_mse_measures_the_closed_form_rate(committed) -> None:
    """The tutorial's SGD on MSE (float64, torch.optim): the measured rate of its distance to
    (2, 0) is the closed form's, 1 - lr lam_min (both eigenvalues inside the edge), to 1e-6."""
    lr = 0.05
    x = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    cell = _sgd_on_mse(committed, lr=lr, steps=400)
    done = reference.train_cell(type(cell)(**{**cell.__dict__, "dtype": "float64"}), x, 2 * x)
    path = np.array([done.initial, *[(r.weight, r.bias) for r in done.rows]])
    errors = np.hypot(path[:, 0] - 2.0, path[:, 1])
    h = 2 / 3 * np.array([[1 + 4 + 9, 1 + 2 + 3], [1 + 2 + 3, 3]])

    want = rates.rate(lr, 0.0, rates.eigenvalues(h), False)

    assert rates.measured(errors, rates.floor((2.0, 0.0), "float64")) == pytest.approx(
        float(want), rel=1e-6
    )


def test_the_rate_map_takes_the_studys_settings_and_zeros_for_an_optimizer_it_lacks() -> None:
    """content.rate_map: momentum's settings from its rows; Nesterov, absent, torch's
    defaults; the edges are sgd.edge's at each momentum."""
    import pandas as pd

    from pipeline.explorer import content

    cells = pd.DataFrame(
        {"optimizer": ["sgd", "momentum"], "momentum": [0.0, 0.9], "dampening": [0.0, 0.1],
         "weight_decay": [0.0, 0.01]}
    )  # fmt: skip

    got = content.rate_map(cells, (1e-3, 10.0))

    assert got["settings"] == {
        "sgd": {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0},
        "momentum": {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        "nesterov": {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0},
    }
    mu = got["momenta"][50]
    assert got["edges"]["heavy"][50] == sgd.edge({"momentum": mu, "dampening": 0.1}, 1.0)
    assert got["edges"]["nesterov"][50] == sgd.edge({"momentum": mu}, 1.0, nesterov=True)
