"""The layout shows the design: DVC sees every module a stage imports, stages never import
stages, and the registries of losses, optimizers and clipping modes agree."""

import ast
import inspect
import re
import shlex
from pathlib import Path
from typing import get_args

from pipeline import (
    batched,
    classify,
    clip,
    closed_form,
    configs,
    engine,
    minimiser,
    model,
    params,
    stability,
)
from tests import dvc_files
from tests.conftest import ROOT

PACKAGE = ROOT / "pipeline"
STAGES = PACKAGE / "stages"


def dvc_stages() -> dict[str, dict]:
    return dvc_files.stages(ROOT)


def module_file(name: str) -> Path | None:
    """The file of project module `name` (pipeline.x or pipeline.x.y), or None."""
    if name != "pipeline" and not name.startswith("pipeline."):
        return None
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported(path: Path) -> set[Path]:
    """The project files `path` imports anywhere (top level, in functions, for typing),
    with each parent package's __init__.py."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                if (file := module_file(".".join(parts[:i]))) is not None:
                    found.add(file)
    return found


def closure(entry: Path) -> set[Path]:
    """`entry` and every project file it imports, transitively."""
    todo, seen = [entry], set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imported(path) - seen)
    return seen


def entry_point(cmd: str) -> Path:
    """The stage module a dvc.yaml command runs: `python -m pipeline STAGE ...`."""
    words = shlex.split(cmd)
    assert words[:3] == ["python", "-m", "pipeline"], cmd
    return STAGES / f"{words[3]}.py"


def test_every_stage_depends_on_every_module_it_imports() -> None:
    """Each stage's `deps` list exactly the project files its command runs, transitively:
    an edit to any of them makes DVC re-run the stage, and no stale dep is left."""
    for name, stage in dvc_stages().items():
        main = PACKAGE / "__main__.py"
        derived = closure(entry_point(stage["cmd"])) | closure(main)
        listed = {ROOT / d for d in stage["deps"] if str(d).startswith("pipeline/")}

        missing = sorted(str(p.relative_to(ROOT)) for p in derived - listed)
        stale = sorted(str(p.relative_to(ROOT)) for p in listed - derived)
        assert (missing, stale) == ([], []), f"stage {name}: missing {missing}, stale {stale}"


def test_the_import_walk_follows_function_level_and_typing_imports(tmp_path: Path) -> None:
    """imported() sees `import` inside a function and under TYPE_CHECKING: both load code."""
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pipeline import grid\n"
        "def f():\n    import pipeline.record\n"
    )

    got = {p.relative_to(ROOT).as_posix() for p in imported(source)}

    assert got == {"pipeline/__init__.py", "pipeline/grid.py", "pipeline/record.py"}


def test_every_stage_module_is_a_dvc_stage_or_the_drift_check() -> None:
    """pipeline/stages holds entry points only: each one a dvc.yaml stage (or `drift`)."""
    modules = {p.stem for p in STAGES.glob("*.py")} - {"__init__"}
    run_by_dvc = {entry_point(s["cmd"]).stem for s in dvc_stages().values()}

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
    assert optimizers == set(configs.DEFAULT_LR)
    assert set(get_args(params.ClipName)) == set(clip.CLIPS)
    assert set(batched.CLIPS) == {engine.CLIPS[i] for i in engine.GRID_CLIPS.values()}
    assert set(engine.GRID_CLIPS) == set(clip.CLIPS)  # hand-written rules run as torch's
    assert set(get_args(params.ClassLossName)) == set(classify.LOSSES)


def test_the_default_lrs_are_torchs() -> None:
    """configs.DEFAULT_LR is each torch.optim optimizer's own default lr, for every name."""
    defaults = {
        name: inspect.signature(cls).parameters["lr"].default
        for name, (cls, _) in model.OPTIMIZERS.items()
    }

    assert defaults == configs.DEFAULT_LR
