"""The tutorial's model and the closed sets of losses and optimizers gradlab compares."""

from collections.abc import Iterable, Mapping

import torch
from torch import nn, optim

from pipeline.params import LossName, OptimizerName

# Adding a loss or an optimizer is one line here plus its section in params.py/params.yaml.
LOSSES: dict[LossName, type[nn.Module]] = {
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "smoothl1": nn.SmoothL1Loss,
    "huber": nn.HuberLoss,
}
# class, and keyword arguments fixed by the name (not tunable in params.yaml)
OPTIMIZERS: dict[OptimizerName, tuple[type[optim.Optimizer], dict[str, bool]]] = {
    "sgd": (optim.SGD, {}),
    "momentum": (optim.SGD, {}),
    "nesterov": (optim.SGD, {"nesterov": True}),
    "adam": (optim.Adam, {}),
    "adamw": (optim.AdamW, {}),
    "rmsprop": (optim.RMSprop, {}),
    "adagrad": (optim.Adagrad, {}),
}

Kwargs = Mapping[str, float | bool | str | list[float]]


class SimpleModel(nn.Module):
    """The tutorial's y = Wx + b: one input feature, one output, with bias."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features=1, out_features=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def seeded_model(seed: int, dtype: torch.dtype = torch.float32) -> SimpleModel:
    """A SimpleModel initialised by torch.manual_seed(seed): equal seeds, equal weights
    (drawn in float32, as the tutorial's, then converted exactly to `dtype`)."""
    torch.manual_seed(seed)
    return SimpleModel().to(dtype)


def make_loss(name: LossName, kwargs: Kwargs) -> nn.Module:
    return LOSSES[name](**kwargs)


def make_optimizer(
    name: OptimizerName, kwargs: Kwargs, parameters: Iterable[nn.Parameter]
) -> optim.Optimizer:
    cls, fixed = OPTIMIZERS[name]
    args: dict[str, object] = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return cls(parameters, **args, **fixed)  # type: ignore[arg-type]  # kwargs checked by params.py
