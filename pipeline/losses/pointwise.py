"""What the smooth losses torch.nn lacks (logcosh, quartic, cosh) share, built from each
one's own term l(d) and derivative l'(d): the reference engine's module, whose backward is
the exact derivative; the batched engine's rule; and Newton's minimiser, for a term that is
strictly convex (l'' > 0 but at isolated points), so that its mean over points with two
distinct x has one minimiser.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from pipeline.lazy import np, torch
from pipeline.losses.mse import least_squares
from pipeline.losses.spec import Pointwise

if TYPE_CHECKING:
    from torch import Tensor, nn

    from pipeline.losses.spec import Array, Kwargs, Mask

    Elementwise = Callable[[Tensor], Tensor]  # of each error d, in d's dtype
    Closed = Callable[[Array], Array]  # the same in NumPy, float64

NEWTON_STEPS = 100  # quadratic convergence: a handful suffice; more means a bug
HALVINGS = 50  # step halvings before a Newton step counts as no progress
ILL = 1e-8  # a Hessian whose determinant is below this share of its diagonal's product
# has it again without cancellation (pointwise._direction)
SINGULAR = 1e-14  # and below this share, is singular: regularised


@cache
def module_class(name: str, terms: Elementwise, slope: Elementwise) -> type[nn.Module]:
    """The torch.nn-like loss class `name` (reduction mean, sum or none) of the terms
    l(input - target), built on first use (torch is imported lazily here)."""

    class Terms(torch.autograd.Function):
        """The terms, and their exact derivative as backward (autograd through a stable
        form would round otherwise: tests/losses check the two agree)."""

        @staticmethod
        def forward(ctx: object, d: Tensor) -> Tensor:  # type: ignore[override]
            ctx.save_for_backward(d)  # type: ignore[attr-defined]
            return terms(d)

        @staticmethod
        def backward(ctx: object, grad: Tensor) -> Tensor:  # type: ignore[override]
            (d,) = ctx.saved_tensors  # type: ignore[attr-defined]
            return grad * slope(d)

    class Loss(torch.nn.Module):
        def __init__(self, reduction: str = "mean") -> None:
            super().__init__()
            self.reduction = reduction

        def forward(self, input: Tensor, target: Tensor) -> Tensor:
            found = Terms.apply(input - target)
            if self.reduction == "mean":
                return found.mean()
            return found.sum() if self.reduction == "sum" else found

    Loss.__name__ = Loss.__qualname__ = name
    Loss.__doc__ = f"The mean (or sum, or none) of {name}'s terms of input - target."
    return Loss


def builder(name: str, terms: Elementwise, slope: Elementwise) -> Callable[..., nn.Module]:
    """What Loss.module takes: the module_class's instance for the keyword arguments."""
    return lambda **kwargs: module_class(name, terms, slope)(**kwargs)


def rule(terms: Elementwise, slope: Elementwise) -> Pointwise:
    """The batched engine's rule: the terms and dL/dy_hat = slope(d) (1 / n), rounded as the
    reference's autograd rounds them (mean's backward is 1 / n in the dtype, times slope)."""

    def point(d: Tensor, n: int) -> tuple[Tensor, Tensor]:
        return terms(d), slope(d).mul_(torch.ones((), dtype=d.dtype) / n)

    return Pointwise(point)


def one_minimiser(x: Array, y: Array, w: Array, b: Array, kwargs: Kwargs) -> Mask:
    """Loss.unique of a strictly convex term: on two distinct x, always one minimiser."""
    return np.ones(w.shape, dtype=bool)


def newton(
    x: Array,
    y: Array,
    value: Closed,
    slope: Closed,
    curvature: Closed,
    what: str,
    steps: int = NEWTON_STEPS,
) -> tuple[Array, Array]:
    """The minimiser of the mean of `value` over each row of x, y (its derivatives: slope,
    curvature): Newton's method with step halving, from least squares, centred on mean x
    (well conditioned). ArithmeticError naming `what` where the loss is not finite at the
    start (overflow) or Newton does not settle within `steps`."""
    w, b = least_squares(x, y)
    xm = x.mean(axis=1)
    xc = x - xm[:, None]
    c = b + w * xm  # intercept at mean x
    with np.errstate(over="ignore"):  # said below
        start = value(c[:, None] + w[:, None] * xc - y).mean(axis=1)
    if not np.isfinite(start).all():
        raise ArithmeticError(
            f"{what} minimiser: the loss overflows float64 at the least-squares line of "
            f"{np.sum(~np.isfinite(start))} datasets (errors too large)"
        )
    todo = np.arange(x.shape[0])
    for _ in range(steps):
        if not todo.size:
            if not (np.isfinite(w).all() and np.isfinite(c).all()):
                raise ArithmeticError(f"{what} minimiser: not finite (errors too large?)")
            return w, c - w * xm
        d = w[todo, None] * xc[todo] + c[todo, None] - y[todo]
        g = slope(d)
        dw, dc, ill = _direction(xc[todo], g, curvature(d))
        t = _halved(value, d, xc[todo], dw, dc)
        w[todo] -= t * dw
        c[todo] -= t * dc
        scale = 1 + np.abs(y[todo]).max(axis=1)
        moved = np.maximum(np.abs(t * dw) * (1 + np.abs(xc[todo]).max(axis=1)), np.abs(t * dc))
        todo = todo[(moved > 1e-15 * scale) & ~(ill & _flat(xc[todo], g))]
    raise ArithmeticError(f"{what} minimiser: {todo.size} datasets unsolved in {steps} steps")


def _flat(xc: Array, g: Array) -> Mask:
    """Whether the gradient (the slopes g summed over points) is 0 up to its rounding.
    Along a direction where the Hessian nearly vanishes (quartic where it fits one x of
    two exactly), Newton gains only a factor 2/3 a step, and its answer is as good as the
    loss's rounding can tell once the gradient is lost in it: there it stops."""
    floor = xc.shape[1] * np.finfo(np.float64).eps
    return (np.abs((g * xc).mean(axis=1)) <= floor * np.abs(g * xc).mean(axis=1)) & (
        np.abs(g.mean(axis=1)) <= floor * np.abs(g).mean(axis=1)
    )


def _direction(xc: Array, g: Array, h: Array) -> tuple[Array, Array, Mask]:
    """Newton's step (dw, dc) from the slopes g and curvatures h at each point, and where
    the Hessian is near singular (`ill`: quartic's, whose curvature vanishes with the
    error). There its determinant is taken again as a sum of nonnegative terms (no
    cancellation); where it is singular (curvature at one x only), H + eps I with eps =
    SINGULAR times its trace gives the step along the curved direction, as a
    pseudo-inverse would; where no point has curvature (quartic at an exact fit, whose
    slopes vanish too), no step."""
    _, exponent = np.frexp(h.max(axis=1))  # g and h scaled alike leave the step as it is;
    scale = np.ldexp(1.0, -exponent)[:, None]  # by a power of two, exactly: no product of
    g, h = g * scale, h * scale  # cosh's curvatures overflows
    gw, gc = (g * xc).mean(axis=1), g.mean(axis=1)
    hww, hwc, hcc = (h * xc**2).mean(axis=1), (h * xc).mean(axis=1), h.mean(axis=1)
    det = hww * hcc - hwc**2
    ill = ~(det > ILL * hww * hcc)
    if ill.any():  # hcc hww - hwc^2 = hcc mean(h (xc - hwc / hcc)^2)
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = (hwc[ill] / hcc[ill])[:, None]
        spread = (h[ill] * (xc[ill] - centre) ** 2).mean(axis=1)
        det[ill] = np.nan_to_num(hcc[ill] * spread)
        singular = ill & ~(det > SINGULAR * hww * hcc)
        eps = SINGULAR * (hww[singular] + hcc[singular])
        hww[singular] += eps
        hcc[singular] += eps
        det[singular] = hww[singular] * hcc[singular] - hwc[singular] ** 2
        det[singular & ~(det > 0)] = np.inf
    return (hcc * gw - hwc * gc) / det, (hww * gc - hwc * gw) / det, ill


def _halved(value: Closed, d: Array, xc: Array, dw: Array, dc: Array) -> Array:
    """Per row, the step t = 2^-k (k < HALVINGS) along -(dw, dc) at which the mean loss does
    not rise (it always falls, but rounding)."""
    now = value(d).mean(axis=1)
    t = np.ones_like(dw)
    for _ in range(HALVINGS):
        lower = value(d - t[:, None] * (dw[:, None] * xc + dc[:, None])).mean(axis=1) <= now
        if lower.all():
            break
        t = np.where(lower, t, t / 2)
    return t
