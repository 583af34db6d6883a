"""params.yaml, validated once at the edge into frozen typed objects.

Every stage calls `load_or_exit` before it touches anything, so a typo anywhere in
params.yaml stops the pipeline with one line per problem and exit code 2.
"""

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal, Self, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, model_validator

EXIT_BAD_INPUT = 2

LossName = Literal["mse", "l1", "smoothl1", "huber"]
OptimizerName = Literal["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"]
ClipName = Literal["none", "norm", "value", "handnorm", "handvalue"]

# strict: a quoted "0.1" is a typo, not a number; no inf/nan anywhere.
Float = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Fraction = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, lt=1)]
Int = Annotated[int, Field(strict=True)]
Bool = Annotated[bool, Field(strict=True)]
Name = Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


def _norm_type(value: object) -> float | str:
    # clip_grad_norm_ takes any p; below 1 it is not a norm, so refuse it.
    if value == "inf" or (type(value) in (int, float) and 1 <= value < float("inf")):  # type: ignore[operator]
        return value  # type: ignore[return-value]
    raise ValueError("must be a number >= 1 or 'inf'")


NormType = Annotated[float | str, PlainValidator(_norm_type)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamsError(ValueError):
    """Params failed validation; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- env: what shapes the bits ------------------------------------------------------
class EnvParams(Section):
    threads: Annotated[int, Field(strict=True, ge=1)]  # torch.set_num_threads; bits depend on it
    deterministic: Bool  # torch.use_deterministic_algorithms
    workers: Annotated[int, Field(strict=True, ge=1)]  # processes training cells in parallel


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


class NoKwargs(Section):
    pass


class SmoothL1Kwargs(Section):
    beta: Positive  # quadratic below |error| < beta


class HuberKwargs(Section):
    delta: Positive  # quadratic below |error| < delta


class Losses(Section):
    mse: NoKwargs
    l1: NoKwargs
    smoothl1: SmoothL1Kwargs
    huber: HuberKwargs


class SGDKwargs(Section):
    lr: Positive
    weight_decay: NonNegative


class MomentumKwargs(SGDKwargs):
    momentum: Fraction
    dampening: Fraction


class NesterovKwargs(SGDKwargs):
    momentum: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=1)]


class AdamKwargs(Section):
    lr: Positive
    betas: Annotated[list[Fraction], Field(min_length=2, max_length=2)]
    eps: Positive
    weight_decay: NonNegative
    amsgrad: Bool


class RMSpropKwargs(Section):
    lr: Positive
    alpha: Fraction
    eps: Positive
    momentum: Fraction
    centered: Bool
    weight_decay: NonNegative


class AdagradKwargs(Section):
    lr: Positive
    lr_decay: NonNegative
    eps: Positive
    initial_accumulator_value: NonNegative
    weight_decay: NonNegative


class Optimizers(Section):
    sgd: SGDKwargs
    momentum: MomentumKwargs
    nesterov: NesterovKwargs
    adam: AdamKwargs
    adamw: AdamKwargs
    rmsprop: RMSpropKwargs
    adagrad: AdagradKwargs


class NormClip(Section):
    max_norm: Positive  # 0 would freeze training, negative would reverse gradients
    norm_type: NormType


class ValueClip(Section):
    clip_value: Positive


class Clips(Section):
    norm: NormClip  # also used by handnorm
    value: ValueClip  # also used by handvalue


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
    chunk: Annotated[int, Field(strict=True, ge=1)]  # cells per task
    workers: Annotated[int, Field(strict=True, ge=1)]  # 1: in this process; >1: a local cluster
    scheduler: str | None  # a Dask scheduler's address (DASK_SCHEDULER_ADDRESS if null)


class StabilityGrid(Section):
    """The fine lr grid around each analytic edge: edge * (1 + k * step), |k step| <= span."""

    steps: Annotated[int, Field(strict=True, ge=1)]
    step: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=0.5)]
    span: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=1)]
    tol: Positive  # converged: within tol of the minimiser at the end


ClassLossName = Literal["ce", "margin"]


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
    clips: Annotated[list[Literal["none", "norm", "value"]], Field(min_length=1)]  # train.clips
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


# --- compare, walkthrough, publish --------------------------------------------------
class CompareParams(Section):
    threshold: Positive  # "converged" once the loss falls below this
    curve_stride: Annotated[int, Field(strict=True, ge=1)]  # curves.csv keeps every k-th step


class WalkthroughParams(Section):
    seed: Annotated[int, Field(strict=True, ge=0)]
    lr: Positive


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


def read_yaml(path: Path) -> object:
    """The YAML document, parsed the way DVC parses it (ruamel, YAML 1.2: 1e-3 is a float)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError([f"{path}: file not found"]) from None
    except MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else "?"
        raise ParamsError([f"{path}:{line}: YAML syntax error: {e.problem}"]) from None
    except YAMLError as e:
        raise ParamsError([f"{path}: YAML error: {e}"]) from None


def _variants(annotation: object) -> dict[str, type[BaseModel]]:
    """{tag: model} of a discriminated union of sections (tag: the value of each member's
    first Literal field, e.g. generate's `preset`), or {} for anything else."""
    members = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, Section)]
    tags: dict[str, type[BaseModel]] = {}
    for model in members:
        for field in model.model_fields.values():
            if get_origin(field.annotation) is Literal:
                tags[get_args(field.annotation)[0]] = model
                break
    return tags


def _tag(variants: dict[str, type[BaseModel]]) -> str:
    """The name of the field that tells a union's members apart."""
    model = next(iter(variants.values()))
    return next(k for k, f in model.model_fields.items() if get_origin(f.annotation) is Literal)


def _walk(loc: tuple[str | int, ...]) -> tuple[list[str], type[BaseModel] | None, str | None]:
    """`loc` as the user writes it (without a union's tag), the section it ends in (None
    past a section) and the union tag it went through, if any."""
    model: type[BaseModel] | None = Params
    names: list[str] = []
    tag = None
    parts = list(loc)
    while parts:
        part = str(parts.pop(0))
        names.append(part)
        if model is None or part not in model.model_fields:
            return names + [str(p) for p in parts], None, tag
        annotation = model.model_fields[part].annotation
        if get_origin(annotation) is dict and parts:  # a mapping: its key, then its value
            names.append(str(parts.pop(0)))
            annotation = get_args(annotation)[1]
        if variants := _variants(annotation):
            if parts and str(parts[0]) in variants:  # pydantic puts the tag into loc
                tag = str(parts.pop(0))
                model = variants[tag]
            else:
                model = None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            model = None
    return names, model, tag


def _describe(error: dict[str, object], path: Path) -> str:
    """One line naming the key, the value and what is allowed."""
    parts: tuple[str | int, ...] = error["loc"]  # type: ignore[assignment]
    names, _, tag = _walk(parts)
    loc = ".".join(names) or "(top level)"
    kind, msg = error["type"], str(error["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return f"{path}: {loc}: missing (required)"
    if kind == "extra_forbidden":
        _, section, _ = _walk(parts[:-1])
        keys = list(section.model_fields) if section else []
        under = f" under {_tag({tag: section})}: {tag}" if tag and section else ""
        return f"{path}: {loc} = {error['input']!r}: unknown key{under}; allowed: {', '.join(keys)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        variants = _variants(_annotation(parts))
        key = _tag(variants)
        given = error["input"]
        if not isinstance(given, dict) or key not in given:
            return f"{path}: {loc}.{key}: missing (required); one of {', '.join(variants)}"
        return f"{path}: {loc}.{key} = {given[key]!r}: must be one of {', '.join(variants)}"
    if kind == "value_error" and "input" in error and isinstance(error["input"], dict):
        return f"{path}: {loc + '.' if names else ''}{msg}"  # a cross-field check names its key
    if kind == "finite_number":
        msg = "must be a finite number"
    return f"{path}: {loc} = {error['input']!r}: {msg}"


def _annotation(loc: tuple[str | int, ...]) -> object:
    """The type at `loc`, a path of section names and mapping keys."""
    annotation: object = Params
    for part in loc:
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            annotation = annotation.model_fields[str(part)].annotation  # type: ignore[attr-defined]
    return annotation


def parse(data: object, path: Path = Path("params.yaml")) -> Params:
    """Validated params, or ParamsError listing every problem at once."""
    try:
        return Params.model_validate(data)
    except ValidationError as e:
        lines = dict.fromkeys(_describe(err, path) for err in e.errors())  # type: ignore[arg-type]
        raise ParamsError(list(lines)) from None


def load(path: Path) -> Params:
    return parse(read_yaml(path), path)


def edited_since_commit(path: Path) -> bool:
    """True when `path` differs from its last commit (e.g. left edited by a failed
    `dvc exp run -S`); False when it does not, or git cannot tell (no git, no repository)."""
    try:
        run = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        return False
    return run.returncode == 0 and bool(run.stdout.strip())


def load_or_exit(path: Path) -> Params:
    """Params from `path`; on any problem print one line each to stderr and exit 2,
    saying how to restore params.yaml when it differs from its last commit."""
    try:
        return load(path)
    except ParamsError as e:
        for line in e.problems:
            print(f"error: {line}", file=sys.stderr)
        if edited_since_commit(path):
            print(
                f"note: {path} differs from its last commit (`dvc exp run -S` leaves its "
                f"edits there, even when the run fails): `git diff {path.name}` shows them, "
                f"`git checkout {path.name}` restores the committed values",
                file=sys.stderr,
            )
        raise SystemExit(EXIT_BAD_INPUT) from None
