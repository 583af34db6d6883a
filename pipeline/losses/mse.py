"""Mean squared error, the tutorial's loss: l(d) = d^2 (torch.nn.MSELoss)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.fields import NoKwargs
from pipeline.lazy import np
from pipeline.losses.spec import K1, Fused, Kwargs, Loss, Piecewise

if TYPE_CHECKING:
    from pipeline.losses.spec import Array, Mask


def least_squares(x: Array, y: Array) -> tuple[Array, Array]:
    """The least-squares line of each row, centred on the data's means (exact (2, 0) on
    y = 2x, well conditioned whatever the offset of x)."""
    xm, ym = x.mean(axis=1), y.mean(axis=1)
    xc = x - xm[:, None]
    w = np.sum(xc * (y - ym[:, None]), axis=1) / np.sum(xc * xc, axis=1)
    return w, ym - w * xm


def _unique(x: Array, y: Array, w: Array, b: Array, kwargs: Kwargs) -> Mask:
    return np.ones(w.shape, dtype=bool)  # a strictly convex quadratic: one minimiser


def _coefficients(p: Array, n: int, dtype: type) -> dict[str, Array]:
    one = np.ones(len(p))
    return {  # quadratic everywhere: d d / 1 and dL/dy_hat = d (2 / n) / 1, as torch rounds
        "c": np.inf * one, "h": one, "k2": one, "c0": 0 * one, "m": one,
        "k1": (2.0 / n) * one, "kl": np.float64(1.0 / n) * one,
    }  # fmt: skip


def fused_point(d: float, k: Array, c: int) -> tuple[float, float]:
    """Its Piecewise rule with c = inf, h = k2 = 1: d d and d k1, without the identities."""
    return d * d, d * k[K1, c]


LOSS = Loss(
    name="mse",
    torch="MSELoss",
    kwargs=NoKwargs,
    param=None,
    value=lambda d, _: np.square(d),
    derivative=lambda d, _: 2.0 * d,
    curvature=lambda d, _: np.full_like(d, 2.0),
    solve=lambda x, y, _: least_squares(x, y),
    unique=_unique,
    batched=Piecewise(_coefficients),
    fused=Fused(fused_point, _coefficients),
)
