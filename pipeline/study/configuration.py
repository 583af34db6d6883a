"""A study's configurations: the columns that name one, its one name, and each
optimizer's library default learning rate (the one-shot the report sets beside tuning).

Light on purpose (no torch): the analysis stage reads tables, it trains nothing.
"""

from pipeline.params import OptimizerName

CONFIG = ("scenario", "loss", "optimizer", "clip")  # a configuration's columns
# torch.optim's default lr of each optimizer (tests/test_layout.py checks the signatures)
DEFAULT_LR: dict[OptimizerName, float] = {
    "sgd": 1e-3,
    "momentum": 1e-3,
    "nesterov": 1e-3,
    "adam": 1e-3,
    "adamw": 1e-3,
    "rmsprop": 1e-2,
    "adagrad": 1e-2,
}


def config_name(scenario: str, loss: str, optimizer: str, clip: str) -> str:
    """A configuration's one name: its MLflow run name and its key in summary.csv."""
    return f"{scenario}-{loss}-{optimizer}-{clip}"


def default_lr(optimizer: str) -> float:
    """The library's default learning rate of `optimizer`."""
    return DEFAULT_LR[optimizer]  # type: ignore[index]  # a name of the closed set
