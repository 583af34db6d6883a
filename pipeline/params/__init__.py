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
)
from pipeline.params.schema import (
    PRESETS,
    AnalysisParams,
    Bootstrap,
    Classification,
    ClassLossName,
    ClipName,
    Clips,
    CompareParams,
    DriftParams,
    EnvParams,
    GenerateParams,
    Grid,
    HeavyScenario,
    LineData,
    LineScenario,
    Losses,
    LossName,
    LrGrid,
    OptimizerName,
    Optimizers,
    OutlierScenario,
    Params,
    PublishParams,
    Scenario,
    ScenarioName,
    Seeds,
    StabilityGrid,
    StudyClipName,
    StudyParams,
    StudyRecord,
    Tolerance,
    TrainParams,
    TutorialData,
    TutorialScenario,
    WalkthroughParams,
)

__all__ = [
    "EXIT_BAD_INPUT", "PRESETS", "AnalysisParams", "Bootstrap", "ClassLossName",
    "Classification", "ClipName", "Clips", "CompareParams", "DriftParams",
    "EnvParams", "GenerateParams", "Grid", "HeavyScenario", "LineData", "LineScenario",
    "LossName", "Losses", "LrGrid", "OptimizerName", "Optimizers", "OutlierScenario",
    "Params", "ParamsError", "PublishParams", "Scenario", "ScenarioName", "Seeds",
    "StabilityGrid", "StudyClipName", "StudyParams", "StudyRecord", "Tolerance",
    "TrainParams", "TutorialData", "TutorialScenario", "WalkthroughParams",
    "edited_since_commit", "load", "load_or_exit", "parse", "read_yaml",
]  # fmt: skip
