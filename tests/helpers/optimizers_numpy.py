"""A NumPy oracle of the torch.optim update rules and the clipping rules gradlab uses.

Each optimizer's rule is in its oracle test, tests/optimizers/test_<name>.py, written from
the algorithm box of its torch documentation page
(https://pytorch.org/docs/stable/optim.html), not from torch's code, and in plain float64
NumPy with no torch import: an oracle that shared torch's code could not catch its bugs.
Here: how a rule is replayed, and clipping.
The parameters are one vector theta = (weight, bias); every rule acts elementwise, so the
state of all parameters is one vector per moment, as torch keeps one tensor per parameter.
"""

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pipeline.optimizers import OPTIMIZERS

Array = npt.NDArray[np.float64]
Hyper = Mapping[str, float | bool | str | list[float]]  # an optimizer's params.yaml section
EPS_NORM = 1e-6  # clip_grad_norm_ divides by norm + 1e-6 so a zero norm does not divide


class Rule(Protocol):
    def step(self, theta: Array, g: Array) -> Array:
        """theta after one step on gradient g (the rule's state advances by one step)."""
        ...


def rules() -> dict[str, Callable[..., Rule]]:
    """Each optimizer's NumPy rule, as its oracle test (tests/optimizers/test_<name>.py)
    declares it: RULE, called with its params.yaml keyword arguments."""
    return {name: module(name).RULE for name in OPTIMIZERS}


def states() -> dict[str, dict[str, str]]:
    """Each optimizer's state as its oracle test declares it: STATE, torch.optim's state
    key -> the attribute of the NumPy rule that holds the same vector."""
    return {name: module(name).STATE for name in OPTIMIZERS}


def variants() -> list[tuple[str, dict]]:
    """(optimizer, settings changed from the committed ones) of every oracle test."""
    return [(name, v) for name in OPTIMIZERS for v in module(name).VARIANTS]


def module(name: str) -> ModuleType:
    """The oracle test of optimizer `name`."""
    return importlib.import_module(f"tests.optimizers.test_{name}")


def make(name: str, hyper: Hyper) -> Rule:
    """The rule a gradlab optimizer name means, with its params.yaml keyword arguments."""
    return rules()[name](**hyper)


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
    """One array row per step: the gradient, what the rule applied, theta after it, and
    each state vector the rule holds after it (by torch's key; absent until it is set)."""

    grads: Array
    clipped: Array
    thetas: Array
    states: dict[str, Array]


def replay(
    rule: Rule,
    clip_name: str,
    settings: Mapping[str, float | str],
    theta: Array,
    gradient: Callable[[Array], Array],
    steps: int,
    state: Mapping[str, str] | None = None,
) -> Replay:
    """`steps` steps of `rule` from theta on gradient(theta), clipped by `clip_name`;
    `state`: torch's state key -> the rule's attribute, recorded after each step."""
    grads, clipped, thetas = [], [], []
    held: dict[str, list[Array]] = {key: [] for key in state or {}}
    for _ in range(steps):
        g = gradient(theta)
        c = clip(clip_name, settings, g)
        theta = rule.step(theta, c)
        grads.append(g)
        clipped.append(c)
        thetas.append(theta)
        for key, attribute in (state or {}).items():
            held[key].append(getattr(rule, attribute))
    recorded = {k: np.array(v) for k, v in held.items() if all(a is not None for a in v)}
    return Replay(np.array(grads), np.array(clipped), np.array(thetas), recorded)
