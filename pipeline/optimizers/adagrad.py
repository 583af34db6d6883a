"""Adagrad (torch.optim.Adagrad): the gradient over the root of the sum of its squares,
with learning-rate decay and an initial accumulator. No closed-form stability edge."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from pipeline.engine.fused.primitives import fma
from pipeline.engine.ops import column
from pipeline.fields import NonNegative, Positive, Section
from pipeline.lazy import torch
from pipeline.optimizers.spec import Fused, Optimizer, Settings

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.optimizers.spec import Bools, Floats


class AdagradKwargs(Section):
    lr: Positive
    lr_decay: NonNegative
    eps: Positive
    initial_accumulator_value: NonNegative
    weight_decay: NonNegative


NEG_LR, LR_DECAY, WEIGHT_DECAY, EPS, INITIAL = range(5)  # fused_update's rows
SUM, CLR = range(2)  # its state slots (CLR: this step's -lr / (1 + (step - 1) decay))


def fused_columns(s: Settings) -> dict[str, Floats]:
    return {
        "neg_lr": -s["lr"],
        "lr_decay": s["lr_decay"],
        "weight_decay": s["weight_decay"],
        "eps": s["eps"],
        "initial_accumulator_value": s["initial_accumulator_value"],
    }


def fused_update(
    p: Floats, g: Floats, s: Floats, h: Floats, hd: Floats, f: Bools, t: int, out: Floats, k: int
) -> None:
    """Rule.step, op for op (sqrt: IEEE's)."""
    decay = f[0]
    for c in range(k):
        s[CLR, 0, c] = h[NEG_LR, c] / (1 + t * h[LR_DECAY, c])  # float64, then the dtype
    for r in range(p.shape[0]):
        for c in range(k):
            if t == 0:
                s[SUM, r, c] = hd[INITIAL, c]
            grad = g[r, c]
            if decay:
                grad = fma(p[r, c], hd[WEIGHT_DECAY, c], grad)
            s[SUM, r, c] = fma(grad, grad, s[SUM, r, c])
            std = math.sqrt(s[SUM, r, c]) + hd[EPS, c]
            out[r, c] = p[r, c] + (grad * s[CLR, 0, c]) / std


class Rule:
    """torch.optim.Adagrad, with learning-rate decay and an initial accumulator."""

    COLUMNS: ClassVar[dict[str, float]] = {
        "weight_decay": 0.0, "lr_decay": 0.0, "eps": math.nan, "initial_accumulator_value": 0.0,
    }  # fmt: skip
    FLAGS: ClassVar[tuple[str, ...]] = ("decay",)
    FUSED: ClassVar[Fused | None] = Fused(fused_update, fused_columns, slots=2)

    @staticmethod
    def branches(s: Settings) -> dict[str, Bools]:
        return {"decay": s["weight_decay"] != 0}

    def __init__(
        self, s: Settings, flags: Mapping[str, bool], dtype: torch.dtype, rows: int
    ) -> None:
        self.decay = flags["decay"]
        self.weight_decay, self.eps = column(s["weight_decay"], dtype), column(s["eps"], dtype)
        self.neg_lr = column(-s["lr"], torch.float64)
        self.lr_decay = column(s["lr_decay"], torch.float64)
        init = column(s["initial_accumulator_value"], dtype)
        self.sum = init.expand(rows, len(init)).clone()
        self.clr = torch.empty(len(init), dtype=dtype)

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay:
            g = torch.addcmul(g, p, self.weight_decay)
        torch.div(self.neg_lr, 1 + t * self.lr_decay, out=self.clr)  # -lr / (1 + (step-1) decay)
        self.sum.addcmul_(g, g)
        std = self.sum.sqrt().add_(self.eps)
        torch.addcdiv(p, g * self.clr, std, out=out)


OPTIMIZER = Optimizer(
    name="adagrad",
    torch="Adagrad",
    kwargs=AdagradKwargs,
    default_lr=1e-2,
    rule=Rule,
    defaults={"eps": 1e-10},
)
