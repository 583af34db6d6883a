"""AdamW (torch.optim.AdamW): Adam with decoupled weight decay (pipeline.optimizers.adam
holds the update rule)."""

from pipeline.optimizers import adam
from pipeline.optimizers.spec import Optimizer

OPTIMIZER = Optimizer(
    name="adamw",
    torch="AdamW",
    kwargs=adam.AdamKwargs,
    default_lr=1e-3,
    rule=adam.Rule,
    to_columns=adam.to_columns,
    to_kwargs=adam.to_kwargs,
    flags={"decoupled": True},
    defaults={"eps": 1e-8},
)
