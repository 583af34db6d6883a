"""Plain gradient descent (torch.optim.SGD without momentum), and torch's SGD update rule,
which momentum and Nesterov share: L2 weight decay, heavy-ball momentum with dampening,
Nesterov's look-ahead.

Stability edge. On a quadratic the gradient is H (p - p*); torch's SGD with weight decay
lam, momentum mu, dampening tau steps g = grad + lam p, buf = mu buf + (1 - tau) g (buf =
g at the first step), then p -= lr buf, or p -= lr (g + mu buf) with nesterov. So weight
decay adds lam to every eigenvalue, and along an eigenvector of H + lam I with eigenvalue
a, with c = lr a, error e and u = lr buf:

    heavy ball:  u' = mu u + (1 - tau) c e,   e' = e - u'
                 M = [[1 - (1 - tau) c, -mu], [(1 - tau) c, mu]]
    nesterov:    u' = mu u + (1 - tau) c e,   e' = e - c e - mu u'
                 M = [[1 - c (1 + mu (1 - tau)), -mu^2], [(1 - tau) c, mu]]

z^2 - tr(M) z + det(M) has both roots inside the unit circle iff |det| < 1 and
|tr| < 1 + det (Jury). Heavy ball: det = mu and 1 + det + tr > 0 gives
c < 2 (1 + mu) / (1 - tau). Nesterov: det = mu (1 - c), and 1 + det + tr > 0 gives
c < 2 (1 + mu) / (1 + (2 - tau) mu), tighter than |det| < 1 (c < (1 + mu) / mu).
So, with lam_max the largest eigenvalue of H, the lr must stay below

    sgd (mu = 0):  2 / (lam_max + lam)            (torch ignores dampening here)
    heavy ball:    2 (1 + mu) / ((1 - tau) (lam_max + lam))
    nesterov:      2 (1 + mu) / ((1 + (2 - tau) mu) (lam_max + lam))

For tau = lam = 0 these are the textbook edges 2 / L, 2 (1 + mu) / L and
2 (1 + mu) / ((1 + 2 mu) L). torch refuses nesterov with dampening, so that case is
derived but never run. A zero eigenvalue (not identified along it) is marginal at any lr.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from pipeline.engine.fused.primitives import fma
from pipeline.engine.ops import column
from pipeline.fields import NonNegative, Positive, Section
from pipeline.lazy import np, torch
from pipeline.optimizers.spec import Fused, Optimizer, Settings, Value

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.optimizers.spec import Bools, Floats


class SGDKwargs(Section):
    lr: Positive
    weight_decay: NonNegative


def edge(hyper: Mapping[str, Value], lam_max: float, nesterov: bool = False) -> float:
    """The largest stable lr of torch's SGD with these settings (momentum, dampening,
    weight_decay: 0 if absent) on a quadratic whose Hessian's largest eigenvalue is
    lam_max (a float or an array of them); inf without curvature."""
    mu, tau = float(hyper.get("momentum", 0.0)), float(hyper.get("dampening", 0.0))  # type: ignore[arg-type]
    if not (0 <= mu < 1 and 0 <= tau < 1):
        raise ValueError(f"momentum {mu} and dampening {tau} must lie in [0, 1)")
    if mu == 0:
        factor = 2.0  # torch skips the buffer, and its dampening, without momentum
    elif nesterov:
        factor = 2 * (1 + mu) / (1 + (2 - tau) * mu)
    else:
        factor = 2 * (1 + mu) / (1 - tau)
    a = np.asarray(lam_max, dtype=np.float64) + float(hyper.get("weight_decay", 0.0))  # type: ignore[arg-type]
    with np.errstate(divide="ignore"):
        lr = np.where(a > 0, factor / a, np.inf)
    return lr if isinstance(lam_max, np.ndarray) else float(lr)  # type: ignore[return-value]


NEG_LR, WEIGHT_DECAY, MOMENTUM, UNDAMPED = range(4)  # fused_update's rows (fused_columns)


def fused_columns(s: Settings) -> dict[str, Floats]:
    return {
        "neg_lr": -s["lr"],
        "weight_decay": s["weight_decay"],
        "momentum": s["momentum"],
        "undamped": 1 - s["dampening"],
    }


def fused_update(
    p: Floats, g: Floats, s: Floats, h: Floats, hd: Floats, f: Bools, t: int, out: Floats, k: int
) -> None:
    """Rule.step, op for op, one parameter of one cell at a time (slot 0: the buffer)."""
    decay, heavy, nesterov = f[0], f[1], f[2]
    for r in range(p.shape[0]):
        for c in range(k):
            grad = g[r, c]
            if decay:
                grad = fma(p[r, c], hd[WEIGHT_DECAY, c], grad)  # g + wd p
            if heavy:
                if t == 0:
                    s[0, r, c] = grad  # torch: the first buffer is the gradient, undamped
                else:
                    s[0, r, c] = fma(grad, hd[UNDAMPED, c], s[0, r, c] * hd[MOMENTUM, c])
                grad = fma(s[0, r, c], hd[MOMENTUM, c], grad) if nesterov else s[0, r, c]
            out[r, c] = fma(grad, hd[NEG_LR, c], p[r, c])  # p - lr g


class Rule:
    """torch.optim.SGD: plain, heavy-ball momentum with dampening, Nesterov."""

    COLUMNS: ClassVar[dict[str, float]] = {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0}
    FLAGS: ClassVar[tuple[str, ...]] = ("decay", "heavy", "nesterov")
    FUSED: ClassVar[Fused | None] = Fused(fused_update, fused_columns, slots=1)

    @staticmethod
    def branches(s: Settings) -> dict[str, Bools]:
        return {"decay": s["weight_decay"] != 0, "heavy": s["momentum"] != 0}

    def __init__(
        self, s: Settings, flags: Mapping[str, bool], dtype: torch.dtype, rows: int
    ) -> None:
        self.decay, self.heavy, self.nesterov = flags["decay"], flags["heavy"], flags["nesterov"]
        self.neg_lr, self.weight_decay = column(-s["lr"], dtype), column(s["weight_decay"], dtype)
        self.momentum, self.undamped = (
            column(s["momentum"], dtype),
            column(1 - s["dampening"], dtype),
        )
        self.buf = torch.empty(0, dtype=dtype)

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay:
            g = torch.addcmul(g, p, self.weight_decay)  # g + wd p
        if self.heavy:
            if t == 0:
                self.buf = g.clone()  # torch: the first buffer is the gradient, undamped
            else:
                self.buf.mul_(self.momentum).addcmul_(g, self.undamped)  # mu b + (1 - tau) g
            g = torch.addcmul(g, self.buf, self.momentum) if self.nesterov else self.buf
        torch.addcmul(p, g, self.neg_lr, out=out)  # p - lr g


OPTIMIZER = Optimizer(
    name="sgd",
    torch="SGD",
    kwargs=SGDKwargs,
    default_lr=1e-3,
    rule=Rule,
    edge=edge,
)
