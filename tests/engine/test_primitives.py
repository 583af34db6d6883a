"""The engine's own arithmetic (pipeline.engine.fused.primitives), compiled as the fused
kernels call it, against NumPy's C library as the oracle."""

import numba
import numpy as np
import pytest

from pipeline.engine.fused.compile import PRIMITIVES, member
from pipeline.losses import logcosh

EXP_NEG, LOG1P_UNIT = PRIMITIVES["exp_neg"], PRIMITIVES["log1p_unit"]


@numba.njit
def _exp_and_log(xs: np.ndarray, out: np.ndarray) -> None:
    for i in range(xs.shape[0]):
        e, em = EXP_NEG(xs[i])
        out[i, 0], out[i, 1], out[i, 2] = e, em, LOG1P_UNIT(e)


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got - want) / np.spacing(np.abs(want))


def test_exp_expm1_and_log1p_are_within_a_few_ulp_of_the_c_library() -> None:
    """exp_neg's exp and expm1 on [-43, 0] (tiny, spaced and every kink of its range
    reduction), log1p_unit at each exp: within 1, 2 and 3 ulp of NumPy's, in float64."""
    kinks = -np.log(2) * (np.arange(64) + 0.5)
    xs = -np.concatenate(
        [np.geomspace(1e-300, 43, 100_000), np.linspace(0, 43, 100_001), -kinks[kinks > -43]]
    )
    out = np.empty((len(xs), 3))
    _exp_and_log(xs, out)

    assert ulps(out[:, 0], np.exp(xs)).max() <= 1
    assert ulps(out[:, 1], np.expm1(xs)).max() <= 2
    assert ulps(out[:, 2], np.log1p(out[:, 0])).max() <= 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_coshs_fused_point_is_log_cosh_and_tanh(dtype: type) -> None:
    """The fused point (its norm row 1) over |d| up to 1e6 and at 0, -0, +-inf and NaN:
    log(cosh(d)) and tanh(d) in the training dtype (NumPy's C library in float64, then
    rounded): tanh within 3 ulp of the dtype (float32: exact here), the term within 2 ulp of
    its largest part; tanh keeps d's sign, inf gives +-1 and an inf term, NaN NaN."""
    fused = member(logcosh.fused_point, "always")
    point = numba.njit(lambda d, k: fused(d, k, 0))
    k = np.ones((1, 1), dtype=dtype)
    d = np.concatenate([np.geomspace(1e-30, 1e6, 20_000), [0.0, np.inf, np.nan]])
    d = np.concatenate([d, -d]).astype(dtype)
    got = np.array([point(v, k) for v in d], dtype=dtype)

    a = np.abs(d.astype(np.float64))
    term = (a + np.log1p(np.exp(-2 * a)) - np.log(2)).astype(dtype)
    finite = np.isfinite(d)
    # the term's formula cancels (|d| + log1p(e) - log 2 ~ d^2 / 2 near 0, in torch too): its
    # error is in ulp of its largest part
    scale = np.spacing(np.maximum(a, np.log(2)).astype(dtype))[finite]
    assert (np.abs(got[finite, 0] - term[finite]) <= 2 * scale).all()
    tanh = np.tanh(d.astype(np.float64)).astype(dtype)[finite]
    assert ulps(got[finite, 1], tanh).max() <= (0 if dtype == np.float32 else 3)
    assert np.array_equal(np.signbit(got[:, 1]), np.signbit(d))
    assert np.array_equal(got[np.isinf(d), 1], np.sign(d[np.isinf(d)]))
    assert np.isinf(got[np.isinf(d), 0]).all() and np.isnan(got[np.isnan(d)]).all()
