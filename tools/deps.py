"""The project files each DVC stage runs: its entry point and every `pipeline` module it
imports, transitively (at the top, inside functions, for typing: each one loads code, and
importing a module runs its package's __init__.py too), with each module's assets: the
files beside it that share its name (pipeline/explorer/page.py reads page.html, .js, .css).

A stage lists them to DVC packed (`listed`): a package's folder (pipeline/engine, with
pipeline/engine/fused) as one directory dep when the stage runs any file in it, the
stage's own entry point and the top-level modules as files. DVC then re-runs a stage on
an edit to any file it runs, and on a few more (a module of a package it uses but not that
module): a cheap superset. A directory dep is one entry in dvc.lock, not one per file:
every `dvc repro` parses dvc.yaml and dvc.lock, and listing files one by one made them
4,100 lines, most of a 2.2 s no-op repro.

tests/test_layout.py checks that every stage of dvc.yaml and env/dvc.yaml lists exactly
these as its `pipeline/` deps; tools/sync_deps.py rewrites them.
"""

import ast
import shlex
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"
# dvc.yaml holds the pipeline; env/dvc.yaml its always-changed first stage (see that file)
DVC_FILES = ("dvc.yaml", "env/dvc.yaml")
ASSETS = (".js", ".css", ".html", ".json")  # a module's own files, named as the module


def stages(root: Path = ROOT) -> dict[str, dict]:
    """Every stage of the project's pipeline files, by name (names are unique across them)."""
    found: dict[str, dict] = {}
    for name in DVC_FILES:
        more = YAML(typ="safe").load((root / name).read_text())["stages"]
        if found.keys() & more.keys():
            raise ValueError(f"{name} repeats a stage name: {sorted(found.keys() & more.keys())}")
        found |= more
    return found


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The file of project module `name` (pipeline, pipeline.x, pipeline.x.y), or None."""
    if name != "pipeline" and not name.startswith("pipeline."):
        return None
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported(path: Path, root: Path = ROOT) -> set[Path]:
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
                if (file := module_file(".".join(parts[:i]), root)) is not None:
                    found.add(file)
    return found


def assets(module: Path) -> set[Path]:
    """The files beside `module` named as it is, with a suffix of ASSETS."""
    return {a for s in ASSETS if (a := module.with_suffix(s)).is_file()}


def members(path: Path) -> set[Path]:
    """A registry package's members: every module beside an __init__.py that finds them at
    run time (pipeline.registry.discover), which no import statement names."""
    if path.name != "__init__.py" or "discover(__name__" not in path.read_text():
        return set()
    return set(path.parent.glob("*.py"))


def closure(entry: Path, root: Path = ROOT) -> set[Path]:
    """`entry` and every project file it imports, transitively, with their assets (and a
    registry's members: editing a loss reruns the stages that train with it)."""
    todo, seen = [entry], set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend((imported(path, root) | members(path)) - seen)
    return seen | {a for path in seen for a in assets(path)}


def entry_point(cmd: str, root: Path = ROOT) -> Path:
    """The stage module a dvc.yaml command runs: `python -m pipeline STAGE ...`."""
    words = shlex.split(cmd)
    if words[:3] != ["python", "-m", "pipeline"]:
        raise ValueError(f"not a `python -m pipeline STAGE` command: {cmd}")
    return root / "pipeline" / "stages" / f"{words[3]}.py"


def derived(cmd: str, root: Path = ROOT) -> set[Path]:
    """The project files a stage's command runs: its stage module, `python -m pipeline`'s
    __main__.py, and what they import."""
    return closure(entry_point(cmd, root), root) | closure(root / "pipeline" / "__main__.py", root)


PACKED_EXCEPT = ("stages",)  # entry points: each stage lists its own file, not its siblings


def packed(files: set[Path], root: Path = ROOT) -> set[Path]:
    """`files` as a stage lists them to DVC (module docstring): each file in a package
    folder of pipeline/ as that folder, but for PACKED_EXCEPT; other files as themselves."""
    found = set()
    for path in files:
        parts = path.relative_to(root / "pipeline").parts
        if len(parts) > 1 and parts[0] not in PACKED_EXCEPT:
            found.add(root / "pipeline" / parts[0])
        else:
            found.add(path)
    return found


def listed(cmd: str, root: Path = ROOT) -> set[Path]:
    """A stage's `pipeline/` deps as dvc.yaml lists them: what it runs, packed."""
    return packed(derived(cmd, root), root)
