"""The tutorial's model, and each loss and optimizer of the grid as torch builds it (their
torch classes are named in their modules: pipeline.losses, pipeline.optimizers)."""

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn, optim

from pipeline.losses import CLASS_LOSSES, LOSSES
from pipeline.optimizers import OPTIMIZERS
from pipeline.params import LossName, OptimizerName

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


def loss_class(name: str) -> type[nn.Module] | Callable[..., nn.Module]:
    """What builds a loss (regression or classification) named in its module: torch.nn's
    class, or the module's own for a loss torch.nn lacks."""
    if name in LOSSES and (build := LOSSES[name].module) is not None:
        return build
    return getattr(nn, (LOSSES.get(name) or CLASS_LOSSES[name]).torch)  # type: ignore[no-any-return]


def optimizer_class(name: OptimizerName) -> type[optim.Optimizer]:
    return getattr(optim, OPTIMIZERS[name].torch)  # type: ignore[no-any-return]


def make_loss(name: LossName, kwargs: Kwargs) -> nn.Module:
    return loss_class(name)(**kwargs)


def make_optimizer(
    name: OptimizerName, kwargs: Kwargs, parameters: Iterable[nn.Parameter]
) -> optim.Optimizer:
    args: dict[str, object] = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    fixed = OPTIMIZERS[name].fixed
    return optimizer_class(name)(parameters, **args, **fixed)  # type: ignore[arg-type]  # checked by params
