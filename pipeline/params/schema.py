"""params.yaml's schema: one frozen, validated section per stage (pipeline.fields).

The sections of the losses, optimizers and clipping modes (train.losses, train.optimizers,
train.clips) and the names allowed in every list of them are built from their modules
(pipeline.losses, .optimizers, .clips): a new member is known here without an edit.
"""

from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import Field, create_model, model_validator

from pipeline.clips import CLIPS
from pipeline.fields import Bool, Float, Fraction, Name, NonNegative, Positive, Section
from pipeline.losses import CLASS_LOSSES, LOSSES
from pipeline.optimizers import OPTIMIZERS

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


# --- env: what shapes the bits ------------------------------------------------------
class EnvParams(Section):
    threads: Annotated[int, Field(strict=True, ge=1)]  # torch.set_num_threads; bits depend on it
    deterministic: Bool  # torch.use_deterministic_algorithms
    workers: Annotated[int, Field(strict=True, ge=1)]  # processes on this machine, this one too
    scheduler: str | None = None  # a Dask scheduler's address (DASK_SCHEDULER_ADDRESS if null)


# --- generate -------------------------------------------------------------------------
class TutorialData(Section):
    """x = 1, 2, 3 and y = 2x, exactly the tutorial's points: nothing else to set."""

    preset: Literal["tutorial"]


class LineData(Section):
    """n points y = slope * x + intercept (+ Gaussian noise), x evenly spaced. Defaults
    let `dvc exp run -S generate.preset=line -S +generate.noise=0.5` set just one key."""

    preset: Literal["line"]
    n: Annotated[int, Field(strict=True, ge=2)] = 20
    x_min: Float = -2.0
    x_max: Float = 2.0
    slope: Float = 2.0
    intercept: Float = 0.0
    noise: NonNegative = 0.0  # standard deviation of Gaussian noise added to y
    seed: Annotated[int, Field(strict=True, ge=0)] = 0  # of the noise

    @model_validator(mode="after")
    def _x_range(self) -> Self:
        if self.x_max <= self.x_min:
            raise ValueError(f"x_max = {self.x_max!r}: must be greater than x_min ({self.x_min!r})")
        return self


# A key of one preset cannot be set under another: it would do nothing.
GenerateParams = Annotated[TutorialData | LineData, Field(discriminator="preset")]
PRESETS: dict[str, type[Section]] = {"tutorial": TutorialData, "line": LineData}


# --- train ----------------------------------------------------------------------------
class Grid(Section):
    losses: Annotated[list[LossName], Field(min_length=1)]
    optimizers: Annotated[list[OptimizerName], Field(min_length=1)]
    clips: Annotated[list[ClipName], Field(min_length=1)]
    seeds: Annotated[list[Annotated[int, Field(strict=True, ge=0)]], Field(min_length=1)]


class TrainParams(Section):
    steps: Annotated[int, Field(strict=True, ge=1)]
    dtype: Literal["float32", "float64"]  # of the model, data and every computed value
    grid: Grid
    losses: Losses
    optimizers: Optimizers
    clips: Clips


# --- scenarios and study: the batched engine's data and cells ---------------------------
class TutorialScenario(Section):
    """x = 1, 2, 3 and y = 2x exactly: seeds change the start only. `tol`: the target of
    steps-to-target, a distance to the loss's minimiser on the data; `batch_size` 0 is
    full batch, else a seeded minibatch of that many points per step."""

    kind: Literal["tutorial"]
    tol: Positive = 1e-2
    batch_size: Annotated[int, Field(strict=True, ge=0)] = 0


class LineScenario(Section):
    """n points evenly on [x_min, x_max], y = slope x + intercept + Gaussian noise."""

    kind: Literal["line"]
    tol: Positive = 1e-2
    batch_size: Annotated[int, Field(strict=True, ge=0)] = 0
    n: Annotated[int, Field(strict=True, ge=2)] = 20
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


class LrGrid(Section):
    """A log grid per optimizer, low to high at per_decade points a decade (DeepOBS: 1e-5
    to 1e2 at 5), plus, for gradient descent with or without momentum, these fractions of
    each scenario's analytic stability edge (MSE's)."""

    low: Positive
    high: Positive
    per_decade: Annotated[int, Field(strict=True, ge=1)]
    near_edge: list[Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]]

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.high <= self.low:
            raise ValueError(f"high = {self.high!r}: must be greater than low ({self.low!r})")
        return self


SeedList = Annotated[list[Annotated[int, Field(strict=True, ge=0)]], Field(min_length=1)]


class Seeds(Section):
    tune: SeedList  # pick each configuration's lr on these
    report: SeedList  # measure it on these, fresh

    @model_validator(mode="after")
    def _apart(self) -> Self:
        if shared := sorted(set(self.tune) & set(self.report)):
            raise ValueError(f"report = {shared!r}: must not repeat tune seeds")
        return self


class Engine(Section):
    chunk: Annotated[int, Field(strict=True, ge=1)]  # cells per task (where: env.workers)


class StabilityGrid(Section):
    """The fine lr grid around each analytic edge: edge * (1 + k * step), |k step| <= span."""

    steps: Annotated[int, Field(strict=True, ge=1)]
    step: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=0.5)]
    span: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=1)]
    tol: Positive  # converged: within tol of the minimiser at the end


class Classification(Section):
    """Points uniform in [-1, 1]^2 labelled by their side of y = 2x; nn.Linear(2, 2)."""

    n: Annotated[int, Field(strict=True, ge=4)]
    losses: Annotated[list[ClassLossName], Field(min_length=1)]
    label_smoothing: Fraction  # CrossEntropyLoss's


class StudyParams(Section):
    steps: Annotated[int, Field(strict=True, ge=1)]
    dtype: Literal["float32", "float64"]
    scenarios: Annotated[list[ScenarioName], Field(min_length=1)]  # keys of `scenarios`
    losses: Annotated[list[LossName], Field(min_length=1)]  # kwargs: train.losses
    optimizers: Annotated[list[OptimizerName], Field(min_length=1)]  # train.optimizers but lr
    clips: Annotated[list[StudyClipName], Field(min_length=1)]  # thresholds: train.clips
    lr: LrGrid
    seeds: Seeds
    engine: Engine
    stability: StabilityGrid
    classification: Classification
    trace_points: Annotated[int, Field(strict=True, ge=2)]  # reporting cells: log-spaced steps


class StudyRecord(Section):
    """What the study stage ran (its manifest): the study's section and the scenarios it
    used, as validated then. The analysis and the report read this, not params.yaml."""

    study: StudyParams
    scenarios: dict[ScenarioName, Scenario]


class Bootstrap(Section):
    reps: Annotated[int, Field(strict=True, ge=100)]  # resamples per interval
    seed: Annotated[int, Field(strict=True, ge=0)]


class AnalysisParams(Section):
    bootstrap: Bootstrap


# --- compare, walkthrough, explorer, publish --------------------------------------------------
class CompareParams(Section):
    threshold: Positive  # "converged" once the loss falls below this
    curve_stride: Annotated[int, Field(strict=True, ge=1)]  # curves.csv keeps every k-th step


class WalkthroughParams(Section):
    seed: Annotated[int, Field(strict=True, ge=0)]
    lr: Positive


class ExplorerParams(Section):
    points: Annotated[int, Field(strict=True, ge=2)]  # the study's paths: log-spaced steps kept


class PublishParams(Section):
    experiment: Name  # the grid's runs
    study_experiment: Name  # the study's runs, one per configuration
    points: Annotated[int, Field(strict=True, ge=2)]  # per history: log-spaced steps to MLflow


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
