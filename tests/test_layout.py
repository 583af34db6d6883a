"""The layout shows the design: DVC sees every module a stage imports; stages are thin
entry points that no module imports; the engines know neither the grid nor the study; one
package talks to MLflow; modules stay small; tools stand apart from the tests; and every
loss, optimizer and clipping mode is complete, each in its one module."""

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline import params
from pipeline.clips import CLIPS
from pipeline.losses import CLASS_LOSSES, LOSSES
from pipeline.optimizers import OPTIMIZERS
from tests.conftest import ROOT
from tools import deps

PACKAGE = ROOT / "pipeline"
STAGES = PACKAGE / "stages"
MAX_LINES = 300  # a module a reader takes in at once
MAX_MAIN = 45  # a stage's main(): parse paths, load params, call the library, write outputs
COMMITTED = params.read_yaml(ROOT / "params.yaml")


def modules(folder: Path = PACKAGE) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def imports(path: Path) -> set[str]:
    """Every module name `path` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return found


def test_every_stage_depends_on_every_module_it_imports() -> None:
    """Each stage's `deps` list exactly the project files its command runs, transitively,
    packed into package folders: an edit to any of them makes DVC re-run the stage (its
    file or the folder holding it is listed), and no stale dep is left."""
    for name, stage in deps.stages().items():
        derived = deps.derived(stage["cmd"])
        listed = {ROOT / d for d in stage["deps"] if str(d).startswith("pipeline/")}

        uncovered = sorted(
            str(p.relative_to(ROOT)) for p in derived if not {p, *p.parents} & listed
        )
        stale = sorted(str(p.relative_to(ROOT)) for p in listed - deps.packed(derived))
        assert (uncovered, stale) == ([], []), f"stage {name}: missing {uncovered}, stale {stale}"
        assert listed == deps.listed(stage["cmd"])


def test_a_stage_lists_package_folders_and_its_own_entry_point() -> None:
    """train runs pipeline/engine/fused/primitives.py and pipeline/stages/train.py: it lists
    pipeline/engine (one dvc.lock entry for the package, subpackages in it) and its own
    stage file, not pipeline/stages, whose other entry points it never runs."""
    got = {p.relative_to(ROOT).as_posix() for p in deps.listed("python -m pipeline train")}

    assert {"pipeline/engine", "pipeline/stages/train.py", "pipeline/__main__.py"} <= got
    assert not any(g.startswith("pipeline/engine/") for g in got)
    assert "pipeline/stages" not in got and "pipeline/stages/study.py" not in got


def test_bytecode_in_a_package_folder_is_no_part_of_the_stages_deps() -> None:
    """Stages list package folders as deps; the __pycache__ Python writes beside the modules
    must not change them (else every repro after an import re-runs every stage): DVC ignores
    it (.dvcignore), and ignores no module."""
    pyc, module = "pipeline/engine/__pycache__/ops.cpython-311.pyc", "pipeline/engine/ops.py"
    run = subprocess.run(
        [sys.executable, "-m", "dvc", "check-ignore", "--non-matching", "--details", pyc, module],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    lines = run.stdout.splitlines()
    ignored = {line.split("\t")[-1] for line in lines if not line.startswith("::")}

    assert ignored == {pyc}, run.stdout


def test_the_import_walk_follows_function_level_and_typing_imports(tmp_path: Path) -> None:
    """imported() sees `import` inside a function and under TYPE_CHECKING: both load code."""
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pipeline import grid\n"
        "def f():\n    import pipeline.grid.trace\n"
    )

    got = {p.relative_to(ROOT).as_posix() for p in deps.imported(source)}

    assert got == {"pipeline/__init__.py", "pipeline/grid/__init__.py", "pipeline/grid/trace.py"}


def test_every_member_of_a_registry_is_a_dep_of_the_stages_that_train_with_it() -> None:
    """Losses, optimizers and clipping modes are found at run time (no import names them):
    each module of theirs is a dep of train and study, so editing one reruns them."""
    found = deps.stages()
    for stage in ("train", "study"):
        files = {p.relative_to(ROOT).as_posix() for p in deps.derived(found[stage]["cmd"])}
        for package in ("losses", "optimizers", "clips"):
            modules = {
                f"pipeline/{package}/{p.name}" for p in (ROOT / "pipeline" / package).glob("*.py")
            }
            assert modules <= files, (stage, sorted(modules - files))


def test_a_modules_own_files_are_deps_of_every_stage_that_imports_it() -> None:
    """The files beside a module that share its name (page.py: page.js, .css, .html; vega.py:
    vega.js, .json) are what it reads: the stage importing it depends on them."""
    explorer = next(s for name, s in deps.stages().items() if name == "explorer")
    files = {p.relative_to(ROOT).as_posix() for p in deps.derived(explorer["cmd"])}

    own = {f"pipeline/explorer/{name}" for name in ("page.js", "page.css", "page.html")}
    assert own | {"pipeline/explorer/vega.js", "pipeline/explorer/vega.json"} <= files
    assert all(f.endswith(".py") for f in files if not f.startswith("pipeline/explorer/"))


def test_every_stage_module_is_a_dvc_stage_or_a_make_command() -> None:
    """pipeline/stages holds entry points only: each one a dvc.yaml stage, or a command
    `make` runs around the pipeline (`drift`, `heal`, `prune`)."""
    modules = {p.stem for p in STAGES.glob("*.py")} - {"__init__"}
    run_by_dvc = {deps.entry_point(s["cmd"]).stem for s in deps.stages().values()}

    assert modules == run_by_dvc | {"drift", "heal", "prune"}


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


def test_the_engines_import_neither_the_grid_nor_the_study() -> None:
    """pipeline.engine trains cells: it knows nothing of the grid or the study above it."""
    engine = PACKAGE / "engine"
    for path in modules(engine):
        reached = deps.closure(path)
        above = [
            p
            for p in reached
            if p.is_relative_to(PACKAGE / "grid") or p.is_relative_to(PACKAGE / "study")
        ]
        assert above == [], f"{path.relative_to(ROOT)} imports {above}"


def test_only_the_tracking_package_imports_mlflow() -> None:
    """One package talks to MLflow: pipeline.tracking."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in modules()
        if not p.is_relative_to(PACKAGE / "tracking")
        and any(name == "mlflow" or name.startswith("mlflow.") for name in imports(p))
    ]
    assert offenders == []


def test_stages_are_thin_entry_points() -> None:
    """Each stage module holds one function, main(), of at most MAX_MAIN lines: the work
    lives in the library."""
    for path in modules(STAGES):
        if path.name == "__init__.py":
            continue
        functions = [n for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)]
        assert [f.name for f in functions] == ["main"], path.name
        (main,) = functions
        assert main.end_lineno - main.lineno + 1 <= MAX_MAIN, f"{path.name}: main is long"


def test_no_module_is_over_max_lines() -> None:
    """Every module of pipeline/ fits in about MAX_LINES lines: split by concept above."""
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_tools_never_import_the_tests() -> None:
    """tools/ stands on its own: the test suite may use it, never the other way."""
    for path in sorted((ROOT / "tools").glob("*.py")):
        assert not any(n == "tests" or n.startswith("tests.") for n in imports(path)), path.name


# --- the closed sets: each member complete, in its one module ---------------------------
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_is_complete(name: str) -> None:
    """A loss names torch's class (or its own module), has its params.yaml section under
    train.losses and an oracle test, tests/losses/test_<name>.py."""
    loss = LOSSES[name]
    assert hasattr(torch.nn, loss.torch) or callable(getattr(loss, "module", None)), loss.torch
    assert name in COMMITTED["train"]["losses"], f"params.yaml: train.losses.{name} missing"
    assert (ROOT / "tests" / "losses" / f"test_{name}.py").is_file(), f"tests/losses/test_{name}.py"


@pytest.mark.parametrize("name", sorted(CLASS_LOSSES))
def test_every_classification_loss_names_a_torch_class(name: str) -> None:
    """A classification loss names the torch.nn class the reference builds."""
    assert hasattr(torch.nn, CLASS_LOSSES[name].torch)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_is_complete(name: str) -> None:
    """An optimizer names torch.optim's class, whose default lr it gives; its rule declares
    the columns and flags it reads; it has its params.yaml section under
    train.optimizers and an oracle test, tests/optimizers/test_<name>.py."""
    o = OPTIMIZERS[name]
    cls = getattr(torch.optim, o.torch)
    assert inspect.signature(cls).parameters["lr"].default == o.default_lr
    assert set(o.flags) <= set(o.rule.FLAGS) and set(o.defaults) <= set(o.rule.COLUMNS)
    assert name in COMMITTED["train"]["optimizers"], f"params.yaml: train.optimizers.{name}"
    section = params.parse(COMMITTED).train.optimizers
    columns = o.to_columns(getattr(section, name).model_dump())
    assert set(columns) - {"lr"} <= set(o.rule.COLUMNS), "to_columns names unknown columns"
    assert o.named(columns) == getattr(section, name).model_dump(), "to_kwargs inverts to_columns"
    test = ROOT / "tests" / "optimizers" / f"test_{name}.py"
    assert test.is_file(), f"{test.relative_to(ROOT)} missing"


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_every_clipping_mode_is_complete(name: str) -> None:
    """A clipping mode's section is in params.yaml's train.clips; it has an oracle test."""
    clip = CLIPS[name]
    assert clip.section is None or clip.section in COMMITTED["train"]["clips"]
    assert (ROOT / "tests" / "clips" / f"test_{name}.py").is_file(), f"tests/clips/test_{name}.py"


@pytest.mark.parametrize(
    "kind, name",
    [("loss", n) for n in sorted(LOSSES)]
    + [("classification loss", n) for n in sorted(CLASS_LOSSES)]
    + [("optimizer", n) for n in sorted(OPTIMIZERS)]
    + [("clipping mode", n) for n in sorted(CLIPS)],
)
def test_every_member_has_its_fused_form_beside_its_exact_one(kind: str, name: str) -> None:
    """The fused engine (the study's default) trains a member only through the fused form
    its own module declares: a loss's point, an optimizer rule's update and columns, a
    clipping form's apply (none: no form, nothing to do)."""
    if kind == "optimizer":
        rule = OPTIMIZERS[name].rule
        assert rule.FUSED is not None, f"{rule.__module__}.Rule.FUSED missing"
        assert rule.FUSED.update.__module__ == rule.__module__
        return
    if kind == "clipping mode":
        form = CLIPS[name].batched
        assert form is None or form.FUSED is not None, f"{form.__module__}: FUSED missing"
        return
    member = (LOSSES if kind == "loss" else CLASS_LOSSES)[name]
    assert member.fused is not None, f"pipeline/losses/{name}.py: its fused form missing"
    assert member.fused.point.__module__ == f"pipeline.losses.{name}"
