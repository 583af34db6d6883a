"""What gradlab knows about a clipping mode, as each clipping module declares it: what the
grid's reference loop does to the gradients after `loss.backward()`, the section of
params.yaml its thresholds come from, and its form in the batched engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from pipeline.fields import Section

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch
    from torch import Tensor

    Floats = npt.NDArray[np.float64]
    Bools = npt.NDArray[np.bool_]

Parameters = list["torch.nn.Parameter"]
Settings = Mapping[str, float | str]  # its thresholds, as params.yaml gives them


@dataclass(frozen=True)
class Fused:
    """A clipping form in the fused engine (pipeline.engine.fused), written in numba's
    subset and rounding as the form's batched rule: `apply(g, l2, cd, out, k)` writes the
    clipped gradients of the first k cells (columns of g; rows: the model's parameters)
    into out; l2: each cell's L2 norm of g; cd: `columns` per cell, in the training dtype.
    The cells of one call share their kind (`kind`: e.g. the norm type's 2, inf, other)."""

    apply: Callable[..., None]
    columns: Callable[[Mapping[str, Floats]], dict[str, Floats]]  # float64 rows, in order
    kind: Callable[[Mapping[str, Floats]], npt.NDArray[np.int64]] | None = None


class Form(Protocol):
    """A clipping rule of the batched engine, over the cells `mask` selects (the others
    pass unchanged: their gradients times 1, or clamped at +-inf)."""

    FUSED: ClassVar[Fused | None]  # its form in the fused engine (None: none yet)

    def __init__(self, mask: Bools, columns: Mapping[str, Floats], dtype: torch.dtype) -> None: ...

    def apply(self, g: Tensor, l2: Tensor, out: Tensor) -> None:
        """Write the clipped gradients of g (rows, cells) into out (which may hold g already);
        l2: each cell's L2 norm of g, as the gradient norm is logged."""


@dataclass(frozen=True)
class Clip:
    """A clipping mode: everything gradlab knows about it."""

    name: str
    section: str | None  # its thresholds' section under train.clips (hand modes share it)
    kwargs: type[Section] | None  # that section's schema (declared by the mode that owns it)
    columns: Mapping[str, float]  # the engine's columns of its thresholds, and the value a
    # cell of another mode holds there
    reference: Callable[[Parameters, Settings], None]  # the grid's loop: clip .grad in place
    batched: type[Form] | None  # its form in the batched engine (None: no clipping)
    by_hand: bool = False  # torch's rule written by hand: the batched engine runs torch's
