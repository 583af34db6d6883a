"""Heavy-ball momentum: torch.optim.SGD with momentum and dampening (pipeline.optimizers.sgd
holds the update rule and the stability edge)."""

from pipeline.fields import Fraction
from pipeline.optimizers import sgd
from pipeline.optimizers.spec import Optimizer


class MomentumKwargs(sgd.SGDKwargs):
    momentum: Fraction
    dampening: Fraction


OPTIMIZER = Optimizer(
    name="momentum",
    torch="SGD",
    kwargs=MomentumKwargs,
    default_lr=1e-3,
    rule=sgd.Rule,
    flags={"nesterov": False},
    edge=sgd.edge,
)
