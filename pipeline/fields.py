"""The types params.yaml is made of: strict numbers, names and sections.

Every section is a frozen pydantic model that refuses unknown keys; numbers are strict (a
quoted "0.1" is a typo, not a number) and finite. The params schema (pipeline.params) and
the sections each loss, optimizer and clipping mode declares are built from these.
"""

import math
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

# Bounds on values that are finite but absurd, each refused naming its key: gradlab's data
# and settings stay within +-1e6 (the squared gradients of |x| = 1e6 are 1e24, well inside
# float32; at |x| = 1e200 the stability edge rounds to 0), a count (steps, points, seeds,
# resamples) stays within a million, a seed within numpy's and torch's 32 bits. What they
# add up to is bounded by env.budget (pipeline.run.budget).
BIG = 1e6
MANY = 1_000_000
Float = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-BIG, le=BIG)]
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=BIG)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=BIG)]
Fraction = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, lt=1)]
OpenFraction = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=1)]
Int = Annotated[int, Field(strict=True, ge=-MANY, le=MANY)]
Count = Annotated[int, Field(strict=True, ge=1, le=MANY)]  # steps, cells per chunk, ...
Several = Annotated[int, Field(strict=True, ge=2, le=MANY)]  # points, traced steps
Seed = Annotated[int, Field(strict=True, ge=0, le=2**32 - 1)]
Bool = Annotated[bool, Field(strict=True)]
Name = Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


def _norm_type(value: object) -> float | str:
    # clip_grad_norm_ takes any p; below 1 it is not a norm, so refuse it.
    if value == "inf" or (type(value) in (int, float) and 1 <= value <= BIG):  # type: ignore[operator]
        return value  # type: ignore[return-value]
    raise ValueError(f"must be a number >= 1 or 'inf' (numbers up to {BIG:g})")


NormType = Annotated[float | str, PlainValidator(_norm_type)]


def norm_type_of(value: float | str) -> float:
    """A norm_type setting as a number: 'inf' is math.inf."""
    return math.inf if value == "inf" else float(value)


class Section(BaseModel):
    """A section of params.yaml: frozen, and no key it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoKwargs(Section):
    """A loss or optimizer that takes no setting of its own."""
