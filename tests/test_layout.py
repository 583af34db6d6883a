"""The layout shows the design: DVC sees every module a stage imports, stages never import
stages, and the registries of losses, optimizers and clipping modes agree."""

import inspect
import re
from pathlib import Path
from typing import get_args

from pipeline import clip, params
from pipeline.engine import batched, classification, regression
from pipeline.grid import closed_form, model
from pipeline.study import configuration, minimiser, stability
from tests.conftest import ROOT
from tools import deps

PACKAGE = ROOT / "pipeline"
STAGES = PACKAGE / "stages"


def test_every_stage_depends_on_every_module_it_imports() -> None:
    """Each stage's `deps` list exactly the project files its command runs, transitively:
    an edit to any of them makes DVC re-run the stage, and no stale dep is left."""
    for name, stage in deps.stages().items():
        derived = deps.derived(stage["cmd"])
        listed = {ROOT / d for d in stage["deps"] if str(d).startswith("pipeline/")}

        missing = sorted(str(p.relative_to(ROOT)) for p in derived - listed)
        stale = sorted(str(p.relative_to(ROOT)) for p in listed - derived)
        assert (missing, stale) == ([], []), f"stage {name}: missing {missing}, stale {stale}"


def test_the_import_walk_follows_function_level_and_typing_imports(tmp_path: Path) -> None:
    """imported() sees `import` inside a function and under TYPE_CHECKING: both load code."""
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pipeline import grid\n"
        "def f():\n    import pipeline.grid.trace\n"
    )

    got = {p.relative_to(ROOT).as_posix() for p in deps.imported(source)}

    assert got == {"pipeline/__init__.py", "pipeline/grid/__init__.py", "pipeline/grid/trace.py"}


def test_every_stage_module_is_a_dvc_stage_or_the_drift_check() -> None:
    """pipeline/stages holds entry points only: each one a dvc.yaml stage (or `drift`)."""
    modules = {p.stem for p in STAGES.glob("*.py")} - {"__init__"}
    run_by_dvc = {deps.entry_point(s["cmd"]).stem for s in deps.stages().values()}

    assert modules == run_by_dvc | {"drift"}


def test_stages_never_import_stages_and_the_library_never_imports_a_stage() -> None:
    """No module imports pipeline.stages: the library knows nothing of its entry points."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__main__.py"
        and re.search(
            r"^\s*(from pipeline\.stages|from pipeline import stages|import pipeline\.stages)",
            path.read_text(),
            re.MULTILINE,
        )
    ]

    assert offenders == []


def test_the_registries_agree() -> None:
    """Every loss, optimizer and clipping name is in the params schema, the model's
    registry, the closed forms, the batched engine, the minimisers, the curvatures and
    the committed params.yaml; nothing is in one only (README: adding a loss)."""
    losses, optimizers = set(get_args(params.LossName)), set(get_args(params.OptimizerName))
    raw = params.read_yaml(ROOT / "params.yaml")["train"]  # type: ignore[index]

    assert losses == set(model.LOSSES) == set(closed_form.TERMS) == set(params.Losses.model_fields)
    assert losses == set(raw["losses"]) == set(batched.LOSSES)
    assert losses == set(minimiser.SOLVERS) == set(stability.CURVATURE)
    assert optimizers == set(model.OPTIMIZERS) == set(params.Optimizers.model_fields)
    assert optimizers == set(raw["optimizers"]) == set(batched.OPTIMIZERS) == set(batched.FAMILY)
    assert optimizers == set(configuration.DEFAULT_LR)
    assert set(get_args(params.ClipName)) == set(clip.CLIPS)
    assert set(batched.CLIPS) == {regression.CLIPS[i] for i in regression.GRID_CLIPS.values()}
    assert set(regression.GRID_CLIPS) == set(clip.CLIPS)  # hand-written rules run as torch's
    assert set(get_args(params.ClassLossName)) == set(classification.LOSSES)


def test_the_default_lrs_are_torchs() -> None:
    """configuration.DEFAULT_LR is each torch.optim optimizer's own default lr, for every name."""
    defaults = {
        name: inspect.signature(cls).parameters["lr"].default
        for name, (cls, _) in model.OPTIMIZERS.items()
    }

    assert defaults == configuration.DEFAULT_LR
