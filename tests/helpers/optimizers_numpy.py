"""A NumPy oracle of the torch.optim update rules and the clipping rules gradlab uses.

Each rule is written from the algorithm box of its torch documentation page
(https://pytorch.org/docs/stable/optim.html), not from torch's code, and in plain float64
NumPy with no torch import: an oracle that shared torch's code could not catch its bugs.
The parameters are one vector theta = (weight, bias); every rule acts elementwise, so the
state of all parameters is one vector per moment, as torch keeps one tensor per parameter.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Hyper = Mapping[str, float | bool | str | list[float]]  # an optimizer's params.yaml section
EPS_NORM = 1e-6  # clip_grad_norm_ divides by norm + 1e-6 so a zero norm does not divide


class Rule(Protocol):
    def step(self, theta: Array, g: Array) -> Array:
        """theta after one step on gradient g (the rule's state advances by one step)."""
        ...


@dataclass
class SGD:
    """SGD box: L2 weight decay, then momentum with dampening, optionally Nesterov."""

    lr: float
    weight_decay: float = 0.0
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    buf: Array | None = None  # b_{t-1}; None before the first step (b_1 = g_1, undampened)

    def step(self, theta: Array, g: Array) -> Array:
        if self.weight_decay != 0:
            g = g + self.weight_decay * theta  # L2: the penalty's gradient joins g
        if self.momentum != 0:
            if self.buf is None:
                self.buf = g.copy()  # t = 1: b_1 = g_1, dampening not applied
            else:
                self.buf = self.momentum * self.buf + (1 - self.dampening) * g
            g = g + self.momentum * self.buf if self.nesterov else self.buf
        return theta - self.lr * g


@dataclass
class Adam:
    """Adam box (L2 decay added to g) or, decoupled, AdamW box (theta shrunk by lr*wd
    before the update, g untouched); amsgrad keeps the running max of v_t and applies
    the bias correction to that max."""

    lr: float
    betas: Sequence[float]
    eps: float
    weight_decay: float
    amsgrad: bool
    decoupled: bool  # True: AdamW
    t: int = 0
    m: Array = field(default_factory=lambda: np.zeros(2))
    v: Array = field(default_factory=lambda: np.zeros(2))
    v_max: Array = field(default_factory=lambda: np.zeros(2))

    def step(self, theta: Array, g: Array) -> Array:
        beta1, beta2 = self.betas
        self.t += 1
        if self.decoupled:
            theta = theta - self.lr * self.weight_decay * theta
        elif self.weight_decay != 0:
            g = g + self.weight_decay * theta
        self.m = beta1 * self.m + (1 - beta1) * g
        self.v = beta2 * self.v + (1 - beta2) * g**2
        m_hat = self.m / (1 - beta1**self.t)
        if self.amsgrad:
            self.v_max = np.maximum(self.v_max, self.v)  # max of the raw v, then corrected
            v_hat = self.v_max / (1 - beta2**self.t)
        else:
            v_hat = self.v / (1 - beta2**self.t)
        return theta - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


@dataclass
class RMSprop:
    """RMSprop box: eps is added outside the square root; centered subtracts the squared
    running mean of g; momentum accumulates the normalised step in a buffer."""

    lr: float
    alpha: float
    eps: float
    momentum: float
    centered: bool
    weight_decay: float
    v: Array = field(default_factory=lambda: np.zeros(2))
    g_ave: Array = field(default_factory=lambda: np.zeros(2))
    buf: Array = field(default_factory=lambda: np.zeros(2))  # b_0 = 0 (unlike SGD's b_1 = g_1)

    def step(self, theta: Array, g: Array) -> Array:
        if self.weight_decay != 0:
            g = g + self.weight_decay * theta
        self.v = self.alpha * self.v + (1 - self.alpha) * g**2
        v_tilde = self.v
        if self.centered:
            self.g_ave = self.alpha * self.g_ave + (1 - self.alpha) * g
            v_tilde = v_tilde - self.g_ave**2
        normalised = g / (np.sqrt(v_tilde) + self.eps)
        if self.momentum > 0:
            self.buf = self.momentum * self.buf + normalised
            return theta - self.lr * self.buf
        return theta - self.lr * normalised


@dataclass
class Adagrad:
    """Adagrad box: state_sum starts at initial_accumulator_value; step t uses the
    decayed rate lr / (1 + (t - 1) * lr_decay)."""

    lr: float
    lr_decay: float
    eps: float
    initial_accumulator_value: float
    weight_decay: float
    t: int = 0
    state_sum: Array | None = None  # tau, set at the first step

    def step(self, theta: Array, g: Array) -> Array:
        self.t += 1
        if self.state_sum is None:
            self.state_sum = np.full_like(theta, self.initial_accumulator_value)
        clr = self.lr / (1 + (self.t - 1) * self.lr_decay)
        if self.weight_decay != 0:
            g = g + self.weight_decay * theta
        self.state_sum = self.state_sum + g**2
        return theta - clr * g / (np.sqrt(self.state_sum) + self.eps)


# gradlab's optimizer names, as the docs define them: the rule and the options the name fixes
RULES: dict[str, tuple[Callable[..., Rule], dict[str, bool]]] = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {}),  # momentum and dampening come from params.yaml
    "nesterov": (SGD, {"nesterov": True}),
    "adam": (Adam, {"decoupled": False}),
    "adamw": (Adam, {"decoupled": True}),
    "rmsprop": (RMSprop, {}),
    "adagrad": (Adagrad, {}),
}


def make(name: str, hyper: Hyper) -> Rule:
    """The rule a gradlab optimizer name means, with its params.yaml keyword arguments."""
    rule, fixed = RULES[name]
    return rule(**hyper, **fixed)


def clip(name: str, settings: Mapping[str, float | str], g: Array) -> Array:
    """g clipped as torch.nn.utils does: norm scales by min(1, max_norm / (norm + 1e-6))
    with the p-norm of all gradients together (inf: the largest |g|); value clamps each
    element into [-clip_value, clip_value]; hand* are the same rules; none keeps g."""
    if name in ("norm", "handnorm"):
        p = math.inf if settings["norm_type"] == "inf" else float(settings["norm_type"])
        norm = np.max(np.abs(g)) if math.isinf(p) else np.sum(np.abs(g) ** p) ** (1 / p)
        return g * min(1.0, float(settings["max_norm"]) / (norm + EPS_NORM))
    if name in ("value", "handvalue"):
        c = float(settings["clip_value"])
        return np.clip(g, -c, c)
    if name == "none":
        return g
    raise KeyError(name)


@dataclass(frozen=True)
class Replay:
    """One array row per step: the gradient, what the rule applied, theta after it."""

    grads: Array
    clipped: Array
    thetas: Array


def replay(
    rule: Rule,
    clip_name: str,
    settings: Mapping[str, float | str],
    theta: Array,
    gradient: Callable[[Array], Array],
    steps: int,
) -> Replay:
    """`steps` steps of `rule` from theta on gradient(theta), clipped by `clip_name`."""
    grads, clipped, thetas = [], [], []
    for _ in range(steps):
        g = gradient(theta)
        c = clip(clip_name, settings, g)
        theta = rule.step(theta, c)
        grads.append(g)
        clipped.append(c)
        thetas.append(theta)
    return Replay(np.array(grads), np.array(clipped), np.array(thetas))
