"""params.yaml, validated once at the edge into frozen typed objects.

Every stage calls `load_or_exit` before it touches anything, so a typo anywhere in
params.yaml stops the pipeline with one line per problem and exit code 2. The schema is
pipeline.params.schema; reading and the one-line problems, pipeline.params.load.
"""

from pipeline.params.load import (
    EXIT_BAD_INPUT,
    ParamsError,
    edited_since_commit,
    load,
    load_or_exit,
    parse,
    read_yaml,
    refuse,
)
from pipeline.params.scenarios import (
    HeavyScenario,
    LineScenario,
    OutlierScenario,
    Scenario,
    ScenarioName,
    TutorialScenario,
)
from pipeline.params.schema import (
    PRESETS,
    AnalysisParams,
    Bootstrap,
    Budget,
    Classification,
    ClassLossName,
    ClipName,
    Clips,
    CompareParams,
    DriftParams,
    EnvParams,
    GenerateParams,
    Grid,
    LineData,
    Losses,
    LossName,
    LrGrid,
    OptimizerName,
    Optimizers,
    Params,
    PublishParams,
    Seeds,
    StabilityGrid,
    StudyClipName,
    StudyParams,
    StudyRecord,
    Tolerance,
    TrainParams,
    TutorialData,
    WalkthroughParams,
)

__all__ = [
    "EXIT_BAD_INPUT", "PRESETS", "AnalysisParams", "Bootstrap", "Budget", "ClassLossName",
    "Classification", "ClipName", "Clips", "CompareParams", "DriftParams",
    "EnvParams", "GenerateParams", "Grid", "HeavyScenario", "LineData", "LineScenario",
    "LossName", "Losses", "LrGrid", "OptimizerName", "Optimizers", "OutlierScenario",
    "Params", "ParamsError", "PublishParams", "Scenario", "ScenarioName", "Seeds",
    "StabilityGrid", "StudyClipName", "StudyParams", "StudyRecord", "Tolerance",
    "TrainParams", "TutorialData", "TutorialScenario", "WalkthroughParams",
    "edited_since_commit", "load", "load_or_exit", "parse", "read_yaml", "refuse",
]  # fmt: skip
