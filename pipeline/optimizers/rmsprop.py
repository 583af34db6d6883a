"""RMSprop (torch.optim.RMSprop): the gradient over the root of a running mean of its
square (eps outside the root), optionally centered and with momentum. No closed-form
stability edge."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from pipeline.engine.fused.primitives import fma, lerp
from pipeline.engine.ops import column
from pipeline.fields import Bool, Fraction, NonNegative, Positive, Section
from pipeline.lazy import torch
from pipeline.optimizers.spec import Fused, Optimizer, Settings

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.optimizers.spec import Bools, Floats


class RMSpropKwargs(Section):
    lr: Positive
    alpha: Fraction
    eps: Positive
    momentum: Fraction
    centered: Bool
    weight_decay: NonNegative


NEG_LR, WEIGHT_DECAY, ALPHA, ONE_MINUS_ALPHA, EPS, MOMENTUM = range(6)  # fused_update's rows
SQUARE_AVG, GRAD_AVG, BUF = range(3)  # its state slots


def fused_columns(s: Settings) -> dict[str, Floats]:
    return {
        "neg_lr": -s["lr"],
        "weight_decay": s["weight_decay"],
        "alpha": s["alpha"],
        "one_minus_alpha": 1 - s["alpha"],
        "eps": s["eps"],
        "momentum": s["momentum"],
    }


def fused_update(
    p: Floats, g: Floats, s: Floats, h: Floats, hd: Floats, f: Bools, t: int, out: Floats, k: int
) -> None:
    """Rule.step, op for op (sqrt: IEEE's)."""
    decay, heavy, centered = f[0], f[1], f[2]
    for r in range(p.shape[0]):
        for c in range(k):
            grad = g[r, c]
            if decay:
                grad = fma(p[r, c], hd[WEIGHT_DECAY, c], grad)
            square = fma(grad * hd[ONE_MINUS_ALPHA, c], grad, s[SQUARE_AVG, r, c] * hd[ALPHA, c])
            s[SQUARE_AVG, r, c] = square
            if centered:
                mean = lerp(s[GRAD_AVG, r, c], grad, hd[ONE_MINUS_ALPHA, c])
                s[GRAD_AVG, r, c] = mean
                avg = math.sqrt(fma(-mean, mean, square)) + hd[EPS, c]
            else:
                avg = math.sqrt(square) + hd[EPS, c]
            if heavy:
                s[BUF, r, c] = s[BUF, r, c] * hd[MOMENTUM, c] + grad / avg  # mu b + g / avg
                out[r, c] = fma(s[BUF, r, c], hd[NEG_LR, c], p[r, c])
            else:
                out[r, c] = p[r, c] + (grad * hd[NEG_LR, c]) / avg  # p - lr g / avg


class Rule:
    """torch.optim.RMSprop, plain or centered, with or without momentum."""

    COLUMNS: ClassVar[dict[str, float]] = {
        "weight_decay": 0.0, "alpha": 0.99, "eps": math.nan, "momentum": 0.0, "centered": 0.0,
    }  # fmt: skip
    FLAGS: ClassVar[tuple[str, ...]] = ("decay", "heavy", "centered")
    FUSED: ClassVar[Fused | None] = Fused(fused_update, fused_columns, slots=3)

    @staticmethod
    def branches(s: Settings) -> dict[str, Bools]:
        return {
            "decay": s["weight_decay"] != 0,
            "heavy": s["momentum"] != 0,
            "centered": s["centered"] != 0,
        }

    def __init__(
        self, s: Settings, flags: Mapping[str, bool], dtype: torch.dtype, rows: int
    ) -> None:
        self.decay, self.heavy, self.centered = flags["decay"], flags["heavy"], flags["centered"]
        self.neg_lr, self.weight_decay = column(-s["lr"], dtype), column(s["weight_decay"], dtype)
        self.alpha, self.one_minus_alpha = column(s["alpha"], dtype), column(1 - s["alpha"], dtype)
        self.eps, self.momentum = column(s["eps"], dtype), column(s["momentum"], dtype)
        self.square_avg, self.grad_avg, self.buf = (
            torch.zeros(rows, len(s["lr"]), dtype=dtype) for _ in range(3)
        )

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay:
            g = torch.addcmul(g, p, self.weight_decay)
        self.square_avg.mul_(self.alpha).addcmul_(g * self.one_minus_alpha, g)
        if self.centered:
            self.grad_avg.lerp_(g, self.one_minus_alpha)
            avg = torch.addcmul(self.square_avg, self.grad_avg, self.grad_avg, value=-1).sqrt_()
        else:
            avg = self.square_avg.sqrt()
        avg.add_(self.eps)
        if self.heavy:
            self.buf.mul_(self.momentum).addcdiv_(g, avg)  # mu b + g / avg
            torch.addcmul(p, self.buf, self.neg_lr, out=out)
        else:
            torch.addcdiv(p, g * self.neg_lr, avg, out=out)  # p - lr g / avg


OPTIMIZER = Optimizer(
    name="rmsprop",
    torch="RMSprop",
    kwargs=RMSpropKwargs,
    default_lr=1e-2,
    rule=Rule,
    defaults={"eps": 1e-8},
)
