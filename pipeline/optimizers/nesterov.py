"""Nesterov momentum: torch.optim.SGD(nesterov=True), which needs momentum > 0 and no
dampening (pipeline.optimizers.sgd holds the update rule and the stability edge)."""

from collections.abc import Mapping

from pipeline.fields import OpenFraction
from pipeline.optimizers import sgd
from pipeline.optimizers.spec import Optimizer, Value


class NesterovKwargs(sgd.SGDKwargs):
    momentum: OpenFraction


def edge(hyper: Mapping[str, Value], lam_max: float) -> float:
    return sgd.edge(hyper, lam_max, nesterov=True)


OPTIMIZER = Optimizer(
    name="nesterov",
    torch="SGD",
    kwargs=NesterovKwargs,
    default_lr=1e-3,
    rule=sgd.Rule,
    fixed={"nesterov": True},
    flags={"nesterov": True},
    edge=edge,
)
