"""torch.optim's update rules, batched: one tensor program steps many cells at once.

Parameters and gradients are (2, cells) tensors, row 0 the weight and row 1 the bias;
every hyperparameter is a (cells,) tensor, so cells with different settings step
together. A rule serves cells that take the same branches of torch's code (`if
weight_decay != 0`, `if momentum != 0`, nesterov, amsgrad, centered, AdamW's decoupled
decay): the engine groups cells by `branches`, so a cell's arithmetic depends on its own
settings only, never on the batch it sits in.

Each `step` mirrors torch's single-tensor implementation (the default on CPU; algorithm
boxes at https://pytorch.org/docs/stable/optim.html) op for op where float32 bits
depend on the order. What torch computes from hyperparameters as Python floats
(1 - beta, lr / bias_correction) is computed here in float64 and rounded once to the
dtype, as torch rounds a Python scalar. One deviation: Adam's beta**step is a running
float64 product (pow differs between torch's vector and scalar kernels, so it would make
a cell's bits depend on its position in the batch); it is within a few float64 ulps.
"""

from collections.abc import Mapping
from typing import Protocol

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

Settings = Mapping[str, npt.NDArray[np.float64]]  # name -> one value per cell (flags 0/1)
FAMILIES = ("sgd", "adam", "rmsprop", "adagrad")  # one rule each; OPTIMIZERS map onto them
FAMILY = {"sgd": 0, "momentum": 0, "nesterov": 0, "adam": 1, "adamw": 1, "rmsprop": 2, "adagrad": 3}


class Rule(Protocol):
    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        """Write into `out` the parameters after step t (0-based) from parameters p and
        the (clipped) gradients g; update the rule's state."""


def branches(family: npt.NDArray[np.int64], s: Settings) -> npt.NDArray[np.int64]:
    """Per cell, the branches torch takes as bits: 1 weight decay != 0, 2 momentum != 0
    (sgd, rmsprop), 4 the family's flag (sgd: nesterov, adam: AdamW's decoupled decay,
    rmsprop: centered), 8 amsgrad (adam). Cells of one family and bits share a rule."""
    heavy = (s["momentum"] != 0) & ((family == 0) | (family == 2))
    flag = np.choose(family, [s["nesterov"], s["decoupled"], s["centered"], 0 * s["lr"]])
    amsgrad = (s["amsgrad"] != 0) & (family == 1)
    return (s["weight_decay"] != 0) * 1 + heavy * 2 + (flag != 0) * 4 + amsgrad * 8


def _t(values: npt.NDArray[np.float64], dtype: torch.dtype) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(dtype)


class SGD:
    """torch.optim.SGD: plain, heavy-ball momentum with dampening, Nesterov."""

    def __init__(self, s: Settings, bits: int, dtype: torch.dtype) -> None:
        self.decay, self.heavy, self.nesterov = bool(bits & 1), bool(bits & 2), bool(bits & 4)
        self.neg_lr, self.weight_decay = _t(-s["lr"], dtype), _t(s["weight_decay"], dtype)
        self.momentum, self.undamped = _t(s["momentum"], dtype), _t(1 - s["dampening"], dtype)
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


class Adam:
    """torch.optim.Adam and AdamW (decoupled weight decay), with or without amsgrad."""

    def __init__(self, s: Settings, bits: int, dtype: torch.dtype) -> None:
        self.decay, self.decoupled, self.amsgrad = bool(bits & 1), bool(bits & 4), bool(bits & 8)
        self.weight_decay, self.eps = _t(s["weight_decay"], dtype), _t(s["eps"], dtype)
        self.shrink = _t(1 - s["lr"] * s["weight_decay"], dtype)  # AdamW's 1 - lr wd
        self.lr, self.beta1, self.beta2 = (
            _t(s[k], torch.float64) for k in ("lr", "beta1", "beta2")
        )
        self.lerp1, self.one_minus_beta2 = _t(1 - s["beta1"], dtype), _t(1 - s["beta2"], dtype)
        k = len(s["lr"])
        self.m, self.v, self.v_max = (torch.zeros(2, k, dtype=dtype) for _ in range(3))
        self.power1, self.power2 = (
            torch.ones(k, dtype=torch.float64),
            torch.ones(k, dtype=torch.float64),
        )
        self.step_size, self.bc2_sqrt = torch.empty(k, dtype=dtype), torch.empty(k, dtype=dtype)

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay and self.decoupled:
            p = torch.mul(p, self.shrink)  # AdamW: p (1 - lr wd) before the update
        elif self.decay:
            g = torch.addcmul(g, p, self.weight_decay)
        self.m.lerp_(g, self.lerp1)  # m + (1 - beta1) (g - m)
        self.v.mul_(self.beta2).addcmul_(g * self.one_minus_beta2, g)  # beta2 v + (1 - beta2) g^2
        self.power1.mul_(self.beta1)  # beta1 ** (t + 1)
        self.power2.mul_(self.beta2)
        torch.div(self.lr, self.power1 - 1, out=self.step_size)  # -lr / (1 - beta1^t)
        torch.sqrt(1 - self.power2, out=self.bc2_sqrt)
        v = torch.maximum(self.v_max, self.v, out=self.v_max) if self.amsgrad else self.v
        denom = (v.sqrt() / self.bc2_sqrt).add_(self.eps)
        torch.addcdiv(p, self.m * self.step_size, denom, out=out)  # p - step_size m / denom


class RMSprop:
    """torch.optim.RMSprop, plain or centered, with or without momentum."""

    def __init__(self, s: Settings, bits: int, dtype: torch.dtype) -> None:
        self.decay, self.heavy, self.centered = bool(bits & 1), bool(bits & 2), bool(bits & 4)
        self.neg_lr, self.weight_decay = _t(-s["lr"], dtype), _t(s["weight_decay"], dtype)
        self.alpha, self.one_minus_alpha = _t(s["alpha"], dtype), _t(1 - s["alpha"], dtype)
        self.eps, self.momentum = _t(s["eps"], dtype), _t(s["momentum"], dtype)
        self.square_avg, self.grad_avg, self.buf = (
            torch.zeros(2, len(s["lr"]), dtype=dtype) for _ in range(3)
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


class Adagrad:
    """torch.optim.Adagrad, with learning-rate decay and an initial accumulator."""

    def __init__(self, s: Settings, bits: int, dtype: torch.dtype) -> None:
        self.decay = bool(bits & 1)
        self.weight_decay, self.eps = _t(s["weight_decay"], dtype), _t(s["eps"], dtype)
        self.neg_lr, self.lr_decay = _t(-s["lr"], torch.float64), _t(s["lr_decay"], torch.float64)
        init = _t(s["initial_accumulator_value"], dtype)
        self.sum = init.expand(2, len(init)).clone()
        self.clr = torch.empty(len(init), dtype=dtype)

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        if self.decay:
            g = torch.addcmul(g, p, self.weight_decay)
        torch.div(self.neg_lr, 1 + t * self.lr_decay, out=self.clr)  # -lr / (1 + (step-1) decay)
        self.sum.addcmul_(g, g)
        std = self.sum.sqrt().add_(self.eps)
        torch.addcdiv(p, g * self.clr, std, out=out)


RULES: dict[str, type[SGD] | type[Adam] | type[RMSprop] | type[Adagrad]] = {
    "sgd": SGD,
    "adam": Adam,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def rule(family: int, bits: int, s: Settings, dtype: torch.dtype) -> Rule:
    """The update rule of cells of one family taking the branches `bits`."""
    return RULES[FAMILIES[family]](s, bits, dtype)
