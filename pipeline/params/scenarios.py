"""The study's data sets, params.yaml's `scenarios`: one section per kind of data set (the
study's cells: pipeline.params.schema)."""

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from pipeline.fields import MANY, Float, NonNegative, Positive, Section, Several


class TutorialScenario(Section):
    """x = 1, 2, 3 and y = 2x exactly: seeds change the start only. `tol`: the target's
    radius, a distance to the loss's minimisers on the data, as a share of the size
    sqrt(slope^2 + intercept^2) of the line the data come from; `batch_size` 0 is full
    batch, else a seeded minibatch of that many points per step."""

    kind: Literal["tutorial"]
    tol: Positive = 5e-3
    batch_size: Annotated[int, Field(strict=True, ge=0, le=MANY)] = 0


class LineScenario(Section):
    """n points evenly on [x_min, x_max], y = slope x + intercept + Gaussian noise."""

    kind: Literal["line"]
    tol: Positive = 5e-3
    batch_size: Annotated[int, Field(strict=True, ge=0, le=MANY)] = 0
    n: Several = 20
    x_min: Float = -2.0
    x_max: Float = 2.0
    slope: Float = 2.0
    intercept: Float = 0.0
    noise: NonNegative = 0.5

    @model_validator(mode="after")
    def _x_range(self) -> Self:
        if self.x_max <= self.x_min:
            raise ValueError(f"x_max = {self.x_max!r}: must be greater than x_min ({self.x_min!r})")
        if self.batch_size > self.n:
            raise ValueError(f"batch_size = {self.batch_size!r}: must be at most n ({self.n})")
        if self.slope == 0 and self.intercept == 0:
            raise ValueError(
                "slope = 0.0: must not be 0 with intercept 0 (tol is a share of the line's size)"
            )
        return self


class OutlierScenario(LineScenario):
    """A line whose targets, a `fraction` of them chosen by the seed, are shifted by offset."""

    kind: Literal["outliers"]  # type: ignore[assignment]  # each member its own tag
    fraction: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=0.5)] = 0.1
    offset: Float = 10.0


class HeavyScenario(LineScenario):
    """A line with Student-t noise of `df` degrees of freedom, times `noise`: heavy tails
    (below df = 2 the variance is infinite)."""

    kind: Literal["heavy"]  # type: ignore[assignment]  # each member its own tag
    df: Positive = 1.5


Scenario = Annotated[
    TutorialScenario | LineScenario | OutlierScenario | HeavyScenario,
    Field(discriminator="kind"),
]
ScenarioName = Annotated[str, Field(strict=True, pattern=r"^[a-z][a-z0-9]*$")]  # in cell names
