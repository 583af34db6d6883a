"""The types params.yaml is made of: strict numbers, names and sections.

Every section is a frozen pydantic model that refuses unknown keys; numbers are strict (a
quoted "0.1" is a typo, not a number) and finite. The params schema (pipeline.params) and
the sections each loss, optimizer and clipping mode declares are built from these.
"""

import math
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

Float = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Fraction = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, lt=1)]
OpenFraction = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=1)]
Int = Annotated[int, Field(strict=True)]
Bool = Annotated[bool, Field(strict=True)]
Name = Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


def _norm_type(value: object) -> float | str:
    # clip_grad_norm_ takes any p; below 1 it is not a norm, so refuse it.
    if value == "inf" or (type(value) in (int, float) and 1 <= value < math.inf):  # type: ignore[operator]
        return value  # type: ignore[return-value]
    raise ValueError("must be a number >= 1 or 'inf'")


NormType = Annotated[float | str, PlainValidator(_norm_type)]


def norm_type_of(value: float | str) -> float:
    """A norm_type setting as a number: 'inf' is math.inf."""
    return math.inf if value == "inf" else float(value)


class Section(BaseModel):
    """A section of params.yaml: frozen, and no key it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoKwargs(Section):
    """A loss or optimizer that takes no setting of its own."""
