"""NAdam (torch.optim.NAdam): Adam with Nesterov momentum (Dozat 2016), its momentum
coefficient warming up as mu_t = beta1 (1 - 0.5 * 0.96 ** (t * momentum_decay)). No
closed-form stability edge.

torch keeps the running product of the mu_t in a float32 scalar (its default scalar dtype,
whatever the parameters' dtype) and takes the rest in Python floats: the batched rule does
the same, per distinct setting, so a cell's bits are torch's."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import Field

from pipeline.engine.fused.primitives import fma, lerp
from pipeline.engine.ops import column
from pipeline.fields import Fraction, NonNegative, Positive, Section
from pipeline.lazy import np, torch
from pipeline.optimizers.spec import Fused, Optimizer, Settings, Value

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.optimizers.spec import Bools


class NAdamKwargs(Section):
    lr: Positive
    betas: Annotated[list[Fraction], Field(min_length=2, max_length=2)]
    eps: Positive
    weight_decay: NonNegative
    momentum_decay: NonNegative


def to_columns(kwargs: Mapping[str, Value]) -> dict[str, float]:
    """The engine's columns: betas as beta1 and beta2."""
    named = dict(kwargs)
    beta1, beta2 = named.pop("betas")  # type: ignore[misc,str-unpack]  # a pair: params.py
    columns = {k: float(v) for k, v in named.items()}  # type: ignore[arg-type]
    return {**columns, "beta1": float(beta1), "beta2": float(beta2)}


def to_kwargs(columns: Mapping[str, float]) -> dict[str, Value]:
    """Its settings named as params.yaml: beta1 and beta2 as betas."""
    return {
        "lr": float(columns["lr"]),
        "betas": [float(columns["beta1"]), float(columns["beta2"])],
        "eps": float(columns["eps"]),
        "weight_decay": float(columns["weight_decay"]),
        "momentum_decay": float(columns["momentum_decay"]),
    }


class Schedule:
    """Per step, each cell's step sizes as torch computes them in Python floats: once per
    distinct (lr, beta1, beta2, momentum_decay), then spread to the cells."""

    def __init__(self, s: Settings) -> None:
        keys = np.stack([s["lr"], s["beta1"], s["beta2"], s["momentum_decay"]], axis=1)
        self.settings, self.inverse = np.unique(keys, axis=0, return_inverse=True)
        self.mu_product = np.ones(len(self.settings), dtype=np.float32)
        self.inverse = self.inverse.reshape(-1)

    def __call__(self, step: int) -> tuple[Floats, Floats, Floats]:
        """(1 - beta2 ** step, the gradient's and the momentum's step sizes) per cell."""
        corr, grad_size, momentum_size = (np.empty(len(self.settings)) for _ in range(3))
        for i, (lr, beta1, beta2, decay) in enumerate(self.settings.tolist()):
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * decay)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * decay)))
            self.mu_product[i] *= np.float32(mu)  # torch: a float32 tensor *= mu
            product = float(self.mu_product[i])
            corr[i] = 1 - beta2**step
            grad_size[i] = -lr * (1.0 - mu) / (1.0 - product)
            momentum_size[i] = (-lr * mu_next) / (1.0 - product * mu_next)
        return corr[self.inverse], grad_size[self.inverse], momentum_size[self.inverse]


if TYPE_CHECKING:
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

NEG_LR, WEIGHT_DECAY, LERP1, BETA2, ONE_MINUS_BETA2, EPS, BETA1, DECAY = range(8)
M, V, SIZES, PRODUCT = range(4)  # fused_update's state slots: SIZES holds 1 - beta2 ** step
# and the gradient's step size, PRODUCT the float32 product of the mu_t and the momentum's size


def fused_columns(s: Settings) -> dict[str, Floats]:
    return {
        "neg_lr": -s["lr"],
        "weight_decay": s["weight_decay"],
        "lerp1": 1 - s["beta1"],
        "beta2": s["beta2"],
        "one_minus_beta2": 1 - s["beta2"],
        "eps": s["eps"],
        "beta1": s["beta1"],
        "momentum_decay": s["momentum_decay"],
    }


def fused_update(
    p: Floats, g: Floats, s: Floats, h: Floats, hd: Floats, f: Bools, t: int, out: Floats, k: int
) -> None:
    """Rule.step, op for op: Schedule's Python floats per cell (C's pow as Python's **; the
    product of the mu_t in float32, as torch keeps it), rounded to the dtype as `column`
    rounds them; sqrt is IEEE's."""
    decay = f[0]
    step = float(t + 1)
    for c in range(k):
        beta1, rate = h[BETA1, c], h[DECAY, c]
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * rate)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * rate)))
        before = np.float32(s[PRODUCT, 0, c]) if t > 0 else np.float32(1.0)
        product32 = before * np.float32(mu)
        s[PRODUCT, 0, c] = product32
        product = float(product32)
        s[SIZES, 0, c] = 1 - h[BETA2, c] ** step
        s[SIZES, 1, c] = h[NEG_LR, c] * (1.0 - mu) / (1.0 - product)
        s[PRODUCT, 1, c] = (h[NEG_LR, c] * mu_next) / (1.0 - product * mu_next)
    for r in range(p.shape[0]):
        for c in range(k):
            param, grad = p[r, c], g[r, c]
            if decay:
                grad = fma(param, hd[WEIGHT_DECAY, c], grad)
            s[M, r, c] = lerp(s[M, r, c], grad, hd[LERP1, c])
            s[V, r, c] = fma(grad * hd[ONE_MINUS_BETA2, c], grad, s[V, r, c] * hd[BETA2, c])
            denom = math.sqrt(s[V, r, c] / s[SIZES, 0, c]) + hd[EPS, c]
            moved = param + (grad * s[SIZES, 1, c]) / denom
            out[r, c] = moved + (s[M, r, c] * s[PRODUCT, 1, c]) / denom


class Rule:
    """torch.optim.NAdam, with or without (L2) weight decay."""

    COLUMNS: ClassVar[dict[str, float]] = {
        "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": math.nan,
        "momentum_decay": 0.004,
    }  # fmt: skip
    FLAGS: ClassVar[tuple[str, ...]] = ("decay",)
    FUSED: ClassVar[Fused | None] = Fused(fused_update, fused_columns, slots=4)

    @staticmethod
    def branches(s: Settings) -> dict[str, Bools]:
        return {"decay": s["weight_decay"] != 0}

    def __init__(
        self, s: Settings, flags: Mapping[str, bool], dtype: torch.dtype, rows: int
    ) -> None:
        self.decay, self.dtype = flags["decay"], dtype
        self.weight_decay, self.eps = column(s["weight_decay"], dtype), column(s["eps"], dtype)
        self.beta2, self.one_minus_beta2 = column(s["beta2"], dtype), column(1 - s["beta2"], dtype)
        self.lerp1 = column(1 - s["beta1"], dtype)
        k = len(s["lr"])
        self.m, self.v = (torch.zeros(rows, k, dtype=dtype) for _ in range(2))
        self.schedule = Schedule(s)

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay:
            g = torch.addcmul(g, p, self.weight_decay)
        corr, grad_size, momentum_size = (column(v, self.dtype) for v in self.schedule(t + 1))
        self.m.lerp_(g, self.lerp1)  # m + (1 - beta1) (g - m)
        self.v.mul_(self.beta2).addcmul_(g * self.one_minus_beta2, g)  # beta2 v + (1 - beta2) g^2
        denom = (self.v / corr).sqrt_().add_(self.eps)
        torch.addcdiv(p, g * grad_size, denom, out=out)  # p + size g / denom
        out.addcdiv_(self.m * momentum_size, denom)  # + size' m / denom


OPTIMIZER = Optimizer(
    name="nadam",
    torch="NAdam",
    kwargs=NAdamKwargs,
    default_lr=2e-3,
    rule=Rule,
    to_columns=to_columns,
    to_kwargs=to_kwargs,
    defaults={"eps": 1e-8, "momentum_decay": 0.004},
)
