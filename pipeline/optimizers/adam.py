"""Adam (torch.optim.Adam), and the update rule AdamW shares: first and second moment
estimates with bias correction, L2 weight decay added to the gradient (AdamW: decoupled,
the parameters shrunk by lr * weight_decay first), optionally amsgrad's running maximum.
No closed-form stability edge: the steps are rescaled by running gradient statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import Field

from pipeline.engine.fused.primitives import fma, lerp
from pipeline.engine.ops import column, strided
from pipeline.fields import Bool, Fraction, NonNegative, Positive, Section
from pipeline.lazy import np, torch
from pipeline.optimizers.spec import Fused, Optimizer, Settings, Value

if TYPE_CHECKING:
    import numpy.typing as npt
    from torch import Tensor

    from pipeline.optimizers.spec import Bools, Floats


class AdamKwargs(Section):
    lr: Positive
    betas: Annotated[list[Fraction], Field(min_length=2, max_length=2)]
    eps: Positive
    weight_decay: NonNegative
    amsgrad: Bool


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
        "amsgrad": bool(columns["amsgrad"]),
    }


class Corrections:
    """Adam's bias corrections 1 - beta1 ** step and (1 - beta2 ** step) ** 0.5, in float64
    as torch computes them with Python floats. Python's ** is libm's pow, and so is
    torch's scalar pow kernel, which torch runs on a strided tensor (its vectorised pow
    rounds differently): it runs on the distinct betas only, then each cell takes its own."""

    def __init__(self, beta1: npt.NDArray[np.float64], beta2: npt.NDArray[np.float64]) -> None:
        unique, inverse = np.unique(np.concatenate([beta1, beta2]), return_inverse=True)
        self.base, self.exponent, self.bc = (strided(unique) for _ in range(3))
        self.half = strided(np.full(len(unique), 0.5))
        self.first, self.second = (torch.from_numpy(i) for i in np.split(inverse, 2))

    def __call__(self, step: int) -> tuple[Tensor, Tensor]:
        self.exponent.fill_(float(step))
        torch.neg(torch.pow(self.base, self.exponent), out=self.bc).add_(1)  # 1 - beta ** step
        bc2_sqrt = torch.pow(self.bc, self.half)
        return self.bc.index_select(0, self.first), bc2_sqrt.index_select(0, self.second)


NEG_LR, WEIGHT_DECAY, SHRINK, LERP1, BETA2, ONE_MINUS_BETA2, EPS, BETA1 = range(8)
M, V, V_MAX, STEP = range(4)  # fused_update's state slots; STEP: step_size and bc2_sqrt


def fused_columns(s: Settings) -> dict[str, Floats]:
    return {
        "neg_lr": -s["lr"],
        "weight_decay": s["weight_decay"],
        "shrink": 1 - s["lr"] * s["weight_decay"],
        "lerp1": 1 - s["beta1"],
        "beta2": s["beta2"],
        "one_minus_beta2": 1 - s["beta2"],
        "eps": s["eps"],
        "beta1": s["beta1"],
    }


def fused_update(
    p: Floats, g: Floats, s: Floats, h: Floats, hd: Floats, f: Bools, t: int, out: Floats, k: int
) -> None:
    """Rule.step, op for op. The bias corrections (float64, C's pow as Python's **) are
    computed once per run of cells with equal betas; sqrt is IEEE's (torch's float32 sqrt
    is not, on this build: 1 ulp apart on some inputs)."""
    decay, decoupled, amsgrad = f[0], f[1], f[2]
    step = float(t + 1)
    beta1, beta2, bc1, bc2_sqrt = -1.0, -1.0, 1.0, 1.0
    for c in range(k):
        if h[BETA1, c] != beta1:
            beta1 = h[BETA1, c]
            bc1 = 1 - beta1**step
        if h[BETA2, c] != beta2:
            beta2 = h[BETA2, c]
            bc2_sqrt = (1 - beta2**step) ** 0.5
        s[STEP, 0, c] = h[NEG_LR, c] / bc1  # -lr / (1 - beta1 ** step), rounded to the dtype
        s[STEP, 1, c] = bc2_sqrt
    for r in range(p.shape[0]):
        for c in range(k):
            param, grad = p[r, c], g[r, c]
            if decay and decoupled:
                param = param * hd[SHRINK, c]  # AdamW: p (1 - lr wd) before the update
            elif decay:
                grad = fma(param, hd[WEIGHT_DECAY, c], grad)
            s[M, r, c] = lerp(s[M, r, c], grad, hd[LERP1, c])
            s[V, r, c] = fma(grad * hd[ONE_MINUS_BETA2, c], grad, s[V, r, c] * hd[BETA2, c])
            v = s[V, r, c]
            if amsgrad:
                v = max(s[V_MAX, r, c], v)
                s[V_MAX, r, c] = v
            denom = math.sqrt(v) / s[STEP, 1, c] + hd[EPS, c]
            out[r, c] = param + (s[M, r, c] * s[STEP, 0, c]) / denom


class Rule:
    """torch.optim.Adam and AdamW (decoupled weight decay), with or without amsgrad."""

    COLUMNS: ClassVar[dict[str, float]] = {
        "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": math.nan, "amsgrad": 0.0,
    }  # fmt: skip
    FLAGS: ClassVar[tuple[str, ...]] = ("decay", "decoupled", "amsgrad")
    FUSED: ClassVar[Fused | None] = Fused(fused_update, fused_columns, slots=4)

    @staticmethod
    def branches(s: Settings) -> dict[str, Bools]:
        return {"decay": s["weight_decay"] != 0, "amsgrad": s["amsgrad"] != 0}

    def __init__(
        self, s: Settings, flags: Mapping[str, bool], dtype: torch.dtype, rows: int
    ) -> None:
        self.decay, self.decoupled, self.amsgrad = (
            flags["decay"],
            flags["decoupled"],
            flags["amsgrad"],
        )
        self.weight_decay, self.eps = column(s["weight_decay"], dtype), column(s["eps"], dtype)
        self.shrink = column(1 - s["lr"] * s["weight_decay"], dtype)  # AdamW's 1 - lr wd
        self.neg_lr, self.beta2 = column(-s["lr"], torch.float64), column(s["beta2"], dtype)
        self.lerp1, self.one_minus_beta2 = (
            column(1 - s["beta1"], dtype),
            column(1 - s["beta2"], dtype),
        )
        k = len(s["lr"])
        self.m, self.v, self.v_max = (torch.zeros(rows, k, dtype=dtype) for _ in range(3))
        self.corrections = Corrections(s["beta1"], s["beta2"])
        self.step_size, self.bc2_sqrt = torch.empty(k, dtype=dtype), torch.empty(k, dtype=dtype)

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay and self.decoupled:
            p = torch.mul(p, self.shrink)  # AdamW: p (1 - lr wd) before the update
        elif self.decay:
            g = torch.addcmul(g, p, self.weight_decay)
        self.m.lerp_(g, self.lerp1)  # m + (1 - beta1) (g - m)
        self.v.mul_(self.beta2).addcmul_(g * self.one_minus_beta2, g)  # beta2 v + (1 - beta2) g^2
        bc1, bc2_sqrt = self.corrections(t + 1)
        torch.div(self.neg_lr, bc1, out=self.step_size)  # -lr / (1 - beta1 ** step)
        self.bc2_sqrt.copy_(bc2_sqrt)
        v = torch.maximum(self.v_max, self.v, out=self.v_max) if self.amsgrad else self.v
        denom = (v.sqrt() / self.bc2_sqrt).add_(self.eps)
        torch.addcdiv(p, self.m * self.step_size, denom, out=out)  # p - step_size m / denom


OPTIMIZER = Optimizer(
    name="adam",
    torch="Adam",
    kwargs=AdamKwargs,
    default_lr=1e-3,
    rule=Rule,
    to_columns=to_columns,
    to_kwargs=to_kwargs,
    flags={"decoupled": False},
    defaults={"eps": 1e-8},
)
