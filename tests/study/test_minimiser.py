"""Oracle tests of each loss's minimiser: numpy's least squares, brute force over lines
through two points, exact rational arithmetic and Nelder-Mead."""

import itertools
from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import minimize

from pipeline.grid import closed_form
from pipeline.losses import LOSSES, l1
from pipeline.params import LossName
from pipeline.study import minimiser

TUTORIAL_X = np.array([1.0, 2.0, 3.0])
ROBUST: list[tuple[LossName, dict[str, float]]] = [
    ("huber", {"delta": 1.0}),
    ("huber", {"delta": 0.05}),
    ("smoothl1", {"beta": 0.7}),
    ("smoothl1", {"beta": 0.01}),
]


def mean_loss(loss: LossName, kwargs: dict[str, float], w: float, b: float, x, y) -> float:
    return float(LOSSES[loss].value(w * x + b - y, kwargs).mean())


def noisy(seed: int, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """y = 2x + 0.3 + heavy-tailed noise on n uneven x: every zone populated."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-2, 2, n))
    return x, 2 * x + 0.3 + rng.standard_t(2, n)


def pair_lines(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    """Every line through two data points of distinct x."""
    pairs = itertools.combinations(range(x.size), 2)
    lines = [((y[j] - y[i]) / (x[j] - x[i]), i, j) for i, j in pairs if x[i] != x[j]]
    return [(w, y[i] - w * x[i]) for w, i, _ in lines]


def test_mse_equals_polyfit_on_noisy_data() -> None:
    """Each row's least squares line equals np.polyfit(x, y, 1) to 1e-12."""
    rows = [noisy(seed) for seed in range(5)]
    x, y = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])

    w, b = minimiser.minimisers("mse", {}, x, y)

    want = np.array([np.polyfit(xi, yi, 1) for xi, yi in rows])
    np.testing.assert_allclose(np.stack([w, b], axis=1), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss, kwargs", [("mse", {}), ("l1", {}), *ROBUST])
@pytest.mark.parametrize("x", [TUTORIAL_X, np.linspace(-2, 2, 20)], ids=["tutorial", "line"])
def test_clean_data_y_equals_2x_gives_exactly_2_0(
    loss: LossName, kwargs: dict[str, float], x: np.ndarray
) -> None:
    """On y = 2x every loss's minimiser is exactly (2, 0), not merely close."""
    assert minimiser.minimiser(loss, kwargs, x, 2 * x) == (2.0, 0.0)


def test_l1_beats_every_line_through_two_points_and_a_fine_grid() -> None:
    """Brute force: some L1 minimiser interpolates two points, so none of those lines
    (nor any point of a fine grid around the result) has a lower objective. Integer data
    with ties are included: they stop the descent short and need its fallback."""
    rng = np.random.default_rng(1)
    ties_x = [[0.0, 1, 2, 1, 2, 1, 2], [0.0, 1, 1, 1, 1, 3, 2]]  # the descent stops short
    ties_y = [[2.0, 1, 2, 2, 2, 0, 0], [2.0, 2, 0, 1, 2, 2, 0]]
    x = np.vstack([ties_x, rng.normal(size=(20, 7)), rng.integers(0, 4, (40, 7))]).astype(float)
    y = np.vstack([ties_y, rng.normal(size=(20, 7)), rng.integers(0, 3, (40, 7))]).astype(float)
    x[:, :2] = [0.0, 1.0]  # two distinct x in every row
    descent = l1._descent(x, y)
    assert not l1.certificate(x, y, *descent)[0][:2].any()  # the fallback runs

    w, b = minimiser.minimisers("l1", {}, x, y)

    grid = np.linspace(-0.1, 0.1, 41)
    for r in range(x.shape[0]):
        got = mean_loss("l1", {}, w[r], b[r], x[r], y[r])
        lines = [mean_loss("l1", {}, wl, bl, x[r], y[r]) for wl, bl in pair_lines(x[r], y[r])]
        near = (
            LOSSES["l1"]
            .value((w[r] + grid[:, None, None]) * x[r] + (b[r] + grid[None, :, None]) - y[r], {})
            .mean(axis=-1)
        )
        assert got <= min(lines) * (1 + 1e-13) and got <= near.min() * (1 + 1e-13)


def test_l1_fit_ignores_one_huge_outlier() -> None:
    """One point of 20 moved by 1000 barely moves L1's line (it drags MSE's far off)."""
    x, y = np.linspace(-2, 2, 20), 2 * np.linspace(-2, 2, 20) + 0.05 * np.sin(np.arange(20))
    y[7] += 1000.0

    w, b = minimiser.minimiser("l1", {}, x, y)

    assert abs(w - 2) < 0.05 and abs(b) < 0.05
    assert abs(minimiser.minimiser("mse", {}, x, y)[1]) > 10


def test_l1_unique_says_whether_one_line_through_two_points_is_optimal() -> None:
    """unique agrees with brute force: True iff exactly one pair line is optimal."""
    rng = np.random.default_rng(2)
    for _ in range(150):
        x, y = np.arange(6.0), rng.integers(0, 3, 6).astype(float)
        values = {
            (round(w, 9), round(b, 9)): mean_loss("l1", {}, w, b, x, y) for w, b in pair_lines(x, y)
        }
        best = min(values.values())
        optimal = [k for k, v in values.items() if v <= best + 1e-12]

        w, b = minimiser.minimiser("l1", {}, x, y)

        assert bool(minimiser.unique("l1", {}, x, y, w, b)) == (len(optimal) == 1)


def exact_piece(x: np.ndarray, y: np.ndarray, quad: np.ndarray, sign: np.ndarray, delta: float):
    """The Huber piece's minimiser for this active set, in exact rational arithmetic."""
    xs, ys, dl = [Fraction(v) for v in x], [Fraction(v) for v in y], Fraction(delta)
    q = [(xi, yi) for xi, yi, qi in zip(xs, ys, quad, strict=True) if qi]
    lin = [(xi, int(si)) for xi, si, qi in zip(xs, sign, quad, strict=True) if not qi]
    sxx, sx, m = sum(xi * xi for xi, _ in q), sum(xi for xi, _ in q), len(q)
    rw = sum(xi * yi for xi, yi in q) - dl * sum(si * xi for xi, si in lin)
    rb = sum(yi for _, yi in q) - dl * sum(si for _, si in lin)
    det = sxx * m - sx * sx
    return (m * rw - sx * rb) / det, (sxx * rb - sx * rw) / det


@pytest.mark.parametrize("loss, kwargs", ROBUST)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_huber_and_smoothl1_minimisers_are_exact_and_global(
    loss: LossName, kwargs: dict[str, float], seed: int
) -> None:
    """Gradient <= 1e-12; the exact rational solution of the returned active set is
    within 1e-12 and lies in that same active set (so it is the minimiser); Nelder-Mead
    from several starts finds nothing lower by more than 1e-12 relative."""
    x, y = noisy(seed)
    kink = kwargs.get("delta", kwargs.get("beta", 0.0))

    w, b = minimiser.minimiser(loss, kwargs, x, y)

    grads = closed_form.gradients(loss, kwargs, w, b, x, y)
    assert abs(grads.weight) <= 1e-12 and abs(grads.bias) <= 1e-12
    d = w * x + b - y
    quad, sign = np.abs(d) < kink, np.where(np.abs(d) < kink, 0.0, np.sign(d))
    assert 2 <= quad.sum() < x.size  # both zones populated: the active set matters
    we, be = exact_piece(x, y, quad, sign, kink)
    assert abs(float(we) - w) <= 1e-12 and abs(float(be) - b) <= 1e-12
    exact_d = [we * Fraction(xi) + be - Fraction(yi) for xi, yi in zip(x, y, strict=True)]
    assert [abs(v) < Fraction(kink) for v in exact_d] == quad.tolist()
    assert [v > 0 for v, q in zip(exact_d, quad, strict=True) if not q] == (
        sign[~quad] > 0
    ).tolist()
    assert minimiser.unique(loss, kwargs, x, y, w, b)
    value = mean_loss(loss, kwargs, w, b, x, y)
    for start in [(w, b), (0.0, 0.0), (w + 1, b - 1), (-3.0, 3.0)]:
        found = minimize(
            lambda p: mean_loss(loss, kwargs, p[0], p[1], x, y),
            start,
            method="Nelder-Mead",
            options={"xatol": 1e-14, "fatol": 1e-16, "maxiter": 20_000, "maxfev": 40_000},
        )
        assert found.fun >= value * (1 - 1e-12)


@pytest.mark.parametrize("delta", [0.1, 1.0])
def test_huber_gradient_vanishes_on_thousands_of_heavy_tailed_datasets(delta: float) -> None:
    """Cauchy noise on six points makes Newton's steps flip points between zones (even
    from one linear side to the other); every row still ends with |gradient| <= 1e-12."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-2, 2, (2000, 6)), 10 * rng.standard_cauchy((2000, 6))

    w, b = minimiser.minimisers("huber", {"delta": delta}, x, y)

    g = LOSSES["huber"].derivative(w[:, None] * x + b[:, None] - y, {"delta": delta}) / 6
    assert np.abs((g * x).sum(axis=1)).max() <= 1e-12 and np.abs(g.sum(axis=1)).max() <= 1e-12


def test_huber_with_every_point_in_the_linear_zone_is_not_unique() -> None:
    """Four points whose signs cancel at y = 0: Huber is flat there, like L1; the result
    is still a minimiser (zero gradient, the flat value) and unique says False."""
    x, y = np.array([-1.0, -1.0, 1.0, 1.0]), np.array([10.0, -10.0, 10.0, -10.0])
    kwargs = {"delta": 1.0}

    w, b = minimiser.minimiser("huber", kwargs, x, y)

    grads = closed_form.gradients("huber", kwargs, w, b, x, y)
    assert grads.weight == pytest.approx(0, abs=1e-14) and grads.bias == pytest.approx(0, abs=1e-14)
    assert mean_loss("huber", kwargs, w, b, x, y) == pytest.approx(9.5, rel=1e-14)
    assert not minimiser.unique("huber", kwargs, x, y, w, b)


def test_l1_of_a_symmetric_zigzag_is_not_unique() -> None:
    """x = 1..4, y = 0, 1, 1, 0: a polygon of minimisers; one of them comes back, flagged."""
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 1.0, 0.0])

    w, b = minimiser.minimiser("l1", {}, x, y)

    assert mean_loss("l1", {}, w, b, x, y) == pytest.approx(0.5, rel=1e-15)
    assert not minimiser.unique("l1", {}, x, y, w, b)


@pytest.mark.parametrize("loss, kwargs", [("mse", {}), ("l1", {}), *ROBUST[:2]])
def test_batched_rows_equal_one_dataset_at_a_time(loss: LossName, kwargs: dict[str, float]) -> None:
    """minimisers over stacked rows (with a leading shape) equals minimiser on each row."""
    rows = [noisy(seed, n=15) for seed in range(6)]
    x = np.array([r[0] for r in rows]).reshape(2, 3, 15)
    y = np.array([r[1] for r in rows]).reshape(2, 3, 15)

    w, b = minimiser.minimisers(loss, kwargs, x, y)

    assert w.shape == b.shape == (2, 3)
    want = np.array([minimiser.minimiser(loss, kwargs, xi, yi) for xi, yi in rows])
    np.testing.assert_allclose(
        np.stack([w.ravel(), b.ravel()], axis=1), want, rtol=1e-14, atol=1e-14
    )


def test_data_without_two_distinct_x_are_refused() -> None:
    """All x equal: the slope is not identified, so ValueError, not a guess."""
    with pytest.raises(ValueError, match="two distinct x"):
        minimiser.minimiser("mse", {}, np.ones(4), np.arange(4.0))
    with pytest.raises(ValueError, match="one shape"):
        minimiser.minimisers("l1", {}, np.ones((2, 3)), np.ones((3, 2)))
