"""params.yaml's schema: one frozen, validated section per stage (pipeline.fields).

The sections of the losses, optimizers and clipping modes (train.losses, train.optimizers,
train.clips) and the names allowed in every list of them are built from their modules
(pipeline.losses, .optimizers, .clips): a new member is known here without an edit.
"""

import math
from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import Field, create_model, model_validator

from pipeline.clips import CLIPS
from pipeline.fields import (
    MANY,
    Bool,
    Count,
    Float,
    Fraction,
    Name,
    NonNegative,
    Positive,
    Section,
    Seed,
    Several,
)
from pipeline.losses import CLASS_LOSSES, LOSSES
from pipeline.optimizers import OPTIMIZERS
from pipeline.params.scenarios import Scenario, ScenarioName

if TYPE_CHECKING:  # the closed sets, for the type checker: their names are data
    LossName = str
    OptimizerName = str
    ClipName = str
    StudyClipName = str
    ClassLossName = str
else:
    LossName = Literal[tuple(LOSSES)]
    OptimizerName = Literal[tuple(OPTIMIZERS)]
    ClipName = Literal[tuple(CLIPS)]
    StudyClipName = Literal[tuple(n for n, c in CLIPS.items() if not c.by_hand)]
    ClassLossName = Literal[tuple(CLASS_LOSSES)]

# train.losses, train.optimizers and train.clips: a section per member (per clip section)
if TYPE_CHECKING:
    from pipeline.fields import Section as Clips
    from pipeline.fields import Section as Losses
    from pipeline.fields import Section as Optimizers
else:
    Losses = create_model(
        "Losses", __base__=Section, **{n: (loss.kwargs, ...) for n, loss in LOSSES.items()}
    )
    Optimizers = create_model(
        "Optimizers", __base__=Section, **{n: (o.kwargs, ...) for n, o in OPTIMIZERS.items()}
    )
    Clips = create_model(
        "Clips",
        __base__=Section,
        **{c.section: (c.kwargs, ...) for c in CLIPS.values() if c.kwargs and c.section},
    )


# --- env: what shapes the bits, where work runs, how much of it --------------------------
Work = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=1e18)]


class Budget(Section):
    """The work the env stage agrees to start (pipeline.run.budget estimates it from these
    params before anything runs): raise a figure on purpose for a bigger run."""

    grid_cell_steps: Work  # the grid's eager loop: cells x steps
    study_cell_steps: Work  # the batched engine: every part's cells x steps
    memory_gib: Positive  # estimated peak of the stage that needs most, all its processes


class EnvParams(Section):
    threads: Annotated[int, Field(strict=True, ge=1, le=1024)]  # torch threads: bits depend on it
    deterministic: Bool  # torch.use_deterministic_algorithms
    workers: Annotated[int, Field(strict=True, ge=1, le=1024)]  # processes here, this one too
    scheduler: str | None = None  # a Dask scheduler's address (DASK_SCHEDULER_ADDRESS if null)
    budget: Budget


# --- generate -------------------------------------------------------------------------
class TutorialData(Section):
    """x = 1, 2, 3 and y = 2x, exactly the tutorial's points: nothing else to set."""

    preset: Literal["tutorial"]


class LineData(Section):
    """n points y = slope * x + intercept (+ Gaussian noise), x evenly spaced. Defaults
    let `dvc exp run -S generate.preset=line -S +generate.noise=0.5` set just one key."""

    preset: Literal["line"]
    n: Several = 20
    x_min: Float = -2.0
    x_max: Float = 2.0
    slope: Float = 2.0
    intercept: Float = 0.0
    noise: NonNegative = 0.0  # standard deviation of Gaussian noise added to y
    seed: Seed = 0  # of the noise

    @model_validator(mode="after")
    def _x_range(self) -> Self:
        if self.x_max <= self.x_min:
            raise ValueError(f"x_max = {self.x_max!r}: must be greater than x_min ({self.x_min!r})")
        return self


# A key of one preset cannot be set under another: it would do nothing.
GenerateParams = Annotated[TutorialData | LineData, Field(discriminator="preset")]
PRESETS: dict[str, type[Section]] = {"tutorial": TutorialData, "line": LineData}


SeedList = Annotated[list[Seed], Field(min_length=1)]


# --- train ----------------------------------------------------------------------------
class Grid(Section):
    losses: Annotated[list[LossName], Field(min_length=1)]
    optimizers: Annotated[list[OptimizerName], Field(min_length=1)]
    clips: Annotated[list[ClipName], Field(min_length=1)]
    seeds: SeedList


class TrainParams(Section):
    steps: Count
    dtype: Literal["float32", "float64"]  # of the model, data and every computed value
    grid: Grid
    losses: Losses
    optimizers: Optimizers
    clips: Clips


# --- study: the batched engine's cells -----------------------------------------------
class LrGrid(Section):
    """A log grid per optimizer, low to high at per_decade points a decade (DeepOBS: 1e-5
    to 1e2 at 5), plus, for gradient descent with or without momentum, these fractions of
    each scenario's analytic stability edge (MSE's)."""

    low: Positive
    high: Positive
    per_decade: Count
    near_edge: list[Positive]

    def exponents(self) -> range:
        """The k of the grid's lrs 10 ** (k / per_decade), low to high (rounded to 9
        digits first: log10(1e-4) * 5 is -20.000000000000004)."""
        first = math.ceil(round(math.log10(self.low) * self.per_decade, 9))
        return range(first, math.floor(round(math.log10(self.high) * self.per_decade, 9)) + 1)

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.high <= self.low:
            raise ValueError(f"high = {self.high!r}: must be greater than low ({self.low!r})")
        return self


class Seeds(Section):
    tune: SeedList  # pick each configuration's lr on these
    report: SeedList  # measure it on these, fresh

    @model_validator(mode="after")
    def _apart(self) -> Self:
        if shared := sorted(set(self.tune) & set(self.report)):
            raise ValueError(f"report = {shared!r}: must not repeat tune seeds")
        return self


class StabilityGrid(Section):
    """The fine lr grid around each analytic edge: edge * (1 + k * step), |k step| <= span."""

    steps: Count
    step: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=0.5)]
    span: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=1)]
    tol: Positive  # converged: within tol of the minimiser at the end


class Classification(Section):
    """Points uniform in [-1, 1]^2 labelled by their side of y = 2x; nn.Linear(2, 2)."""

    n: Annotated[int, Field(strict=True, ge=4, le=MANY)]
    losses: Annotated[list[ClassLossName], Field(min_length=1)]
    label_smoothing: Fraction  # CrossEntropyLoss's


class StudyParams(Section):
    steps: Count
    dtype: Literal["float32", "float64"]
    scenarios: Annotated[list[ScenarioName], Field(min_length=1)]  # keys of `scenarios`
    losses: Annotated[list[LossName], Field(min_length=1)]  # kwargs: train.losses
    optimizers: Annotated[list[OptimizerName], Field(min_length=1)]  # train.optimizers but lr
    clips: Annotated[list[StudyClipName], Field(min_length=1)]  # thresholds: train.clips
    lr: LrGrid
    seeds: Seeds
    engine: Literal["fused", "exact"]  # the fused kernel, or the one bit-identical to torch
    chunk: Count  # cells per task (where: env.workers)
    stability: StabilityGrid
    classification: Classification
    trace_points: Several  # reporting cells: log-spaced steps


class StudyRecord(Section):
    """What the study stage ran (its manifest): the study's section and the scenarios it
    used, as validated then. The analysis and the report read this, not params.yaml."""

    study: StudyParams
    scenarios: dict[ScenarioName, Scenario]


class Bootstrap(Section):
    reps: Annotated[int, Field(strict=True, ge=100, le=MANY)]  # resamples per interval
    seed: Seed


class AnalysisParams(Section):
    bootstrap: Bootstrap


# --- compare, walkthrough, explorer, publish --------------------------------------------------
class CompareParams(Section):
    threshold: Positive  # "converged" once the loss falls below this
    tie: NonNegative  # distances to the line closer than this rank equal
    curve_stride: Count  # curves.csv keeps every k-th step


class WalkthroughParams(Section):
    seed: Seed
    lr: Positive


class ExplorerParams(Section):
    points: Annotated[int, Field(strict=True, ge=2)]  # the study's paths: log-spaced steps kept


class PublishParams(Section):
    experiment: Name  # the grid's runs
    study_experiment: Name  # the study's runs, one per configuration
    points: Several  # per history: log-spaced steps to MLflow


class Tolerance(Section):
    abs: NonNegative
    rel: NonNegative


class DriftParams(Section):
    default: Tolerance
    metrics: dict[str, Tolerance]  # per-metric overrides of default


class Params(Section):
    env: EnvParams
    generate: GenerateParams
    train: TrainParams
    scenarios: dict[ScenarioName, Scenario]
    study: StudyParams
    analysis: AnalysisParams
    compare: CompareParams
    walkthrough: WalkthroughParams
    explorer: ExplorerParams
    publish: PublishParams
    drift: DriftParams

    @model_validator(mode="after")
    def _known_scenarios(self) -> Self:
        if unknown := [s for s in self.study.scenarios if s not in self.scenarios]:
            raise ValueError(
                f"study.scenarios = {unknown!r}: not a key of scenarios "
                f"({', '.join(self.scenarios)})"
            )
        return self
