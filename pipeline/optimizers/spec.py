"""What gradlab knows about an optimizer, as each optimizer module declares it: its
params.yaml section, torch's class, the library's default lr, its update rule in the
batched engine (bit-identical to torch.optim's), the names its settings go by in the
engine's columns and in MLflow, and, for gradient descent, its stability edge.

Several optimizers share one update rule (momentum and Nesterov are torch's SGD with
options): the rule lives in one module, the others name it with the flags they fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from pipeline.fields import Section

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch
    from torch import Tensor

    Bools = npt.NDArray[np.bool_]
    Floats = npt.NDArray[np.float64]

Settings = Mapping[str, "npt.NDArray[np.float64]"]  # column -> one value per cell
Value = float | bool | str | list[float]  # a setting as params.yaml writes it
Edge = Callable[[Mapping[str, Value], float], float]  # (settings, lam_max) -> largest lr


@dataclass(frozen=True)
class Fused:
    """An update rule's form in the fused engine (pipeline.engine.fused), written in numba's
    subset with pipeline.engine.fused.primitives and rounding as the rule's exact form.
    `update(p, g, s, h, hd, f, t, out, k)` writes into out[:, :k] the parameters of the
    first k cells (columns) after step t (0-based), from their parameters p and clipped
    gradients g (rows: the model's parameters), updating their state s (slots, rows,
    cells; zeros before step 0). h and hd hold `columns` per cell, in float64 and in the
    training dtype; f, the rule's FLAGS, is the same for every cell of the call."""

    update: Callable[..., None]
    columns: Callable[[Settings], dict[str, npt.NDArray[np.float64]]]  # rows, update's order
    slots: int  # state rows per parameter


class Rule(Protocol):
    """An update rule of the batched engine: cells of one rule and one set of branches
    step together, each op as torch.optim's loop runs it."""

    COLUMNS: ClassVar[dict[str, float]]  # the columns it reads (lr aside), each with the
    # value a cell of another rule holds there (the engine ignores it)
    FLAGS: ClassVar[tuple[str, ...]]  # the branches torch takes, by name
    FUSED: ClassVar[Fused | None]  # its form in the fused engine (None: none yet)

    @staticmethod
    def branches(s: Settings) -> dict[str, Bools]:
        """Per cell, the flags that follow from its settings (e.g. momentum != 0)."""
        ...

    def __init__(
        self, s: Settings, flags: Mapping[str, bool], dtype: torch.dtype, rows: int
    ) -> None: ...

    def step(self, p: Tensor, g: Tensor, t: int, out: Tensor) -> None:
        """Write into `out` the parameters after step t (0-based) from parameters p and
        the (clipped) gradients g; update the rule's state."""


def same_names(kwargs: Mapping[str, Value]) -> dict[str, float]:
    """Columns named as the settings: every setting is one number (flags 0/1)."""
    return {k: float(v) for k, v in kwargs.items()}  # type: ignore[arg-type]


def kwargs_named(schema: type[Section]) -> Callable[[Mapping[str, float]], dict[str, Value]]:
    """The inverse of same_names for `schema`: its settings from their columns."""

    def named(columns: Mapping[str, float]) -> dict[str, Value]:
        fields = schema.model_fields
        return {
            k: bool(columns[k]) if fields[k].annotation is bool else float(columns[k])
            for k in fields
        }

    return named


@dataclass(frozen=True)
class Optimizer:
    """An optimizer: everything gradlab knows about it."""

    name: str
    torch: str  # torch.optim's class, e.g. "Adam"
    kwargs: type[Section]  # its section under train.optimizers (lr first)
    default_lr: float  # torch's default lr: the study's one-shot baseline
    rule: type[Rule]  # its update rule in the batched engine
    to_columns: Callable[[Mapping[str, Value]], dict[str, float]] = same_names
    to_kwargs: Callable[[Mapping[str, float]], dict[str, Value]] | None = None  # default:
    # kwargs_named(kwargs); MLflow shows a configuration's settings named as params.yaml
    fixed: Mapping[str, bool] = field(default_factory=dict)  # torch kwargs its name fixes
    flags: Mapping[str, bool] = field(default_factory=dict)  # rule flags its name fixes
    defaults: Mapping[str, float] = field(default_factory=dict)  # torch's defaults of its
    # columns, for a cell that does not give them (eps: 1e-8 for Adam, 1e-10 for Adagrad)
    edge: Edge | None = None  # its stability edge on a quadratic, where there is a closed form

    def named(self, columns: Mapping[str, float]) -> dict[str, Value]:
        """Its settings named as params.yaml names them, from the engine's columns."""
        return (self.to_kwargs or kwargs_named(self.kwargs))(columns)
