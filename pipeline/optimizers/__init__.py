"""Every optimizer gradlab compares, one module each (pipeline.optimizers.spec says what a
module declares). Adding an optimizer is adding its module here, its oracle test and its
params.yaml lines: the schema, both engines, the study and MLflow find it."""

from pipeline.optimizers.spec import Optimizer
from pipeline.registry import discover

OPTIMIZERS: dict[str, Optimizer] = discover(__name__, __path__, "OPTIMIZER", Optimizer)
