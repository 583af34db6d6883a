"""Every loss gradlab compares, one module each (pipeline.losses.spec says what a module
declares). Adding a loss is adding its module here, its oracle test and its params.yaml
lines: the schema, both engines, the minimisers, the stability edges and MLflow find it."""

from pipeline.losses.spec import ClassLoss, Loss
from pipeline.registry import discover

LOSSES: dict[str, Loss] = discover(__name__, __path__, "LOSS", Loss)  # regression
CLASS_LOSSES: dict[str, ClassLoss] = discover(__name__, __path__, "LOSS", ClassLoss)
