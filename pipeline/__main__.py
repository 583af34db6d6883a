"""`python -m pipeline <stage> [options]`: run one stage, as dvc.yaml's commands do.

Before anything is imported, three things happen here, at the edge:
- the interpreter is checked for gradlab's dependencies: a stage started by a `python`
  that is not the project's (e.g. `.venv/bin/dvc repro` with a bare system Python on
  PATH) says so in one line instead of a traceback;
- the stage is tied to its parent: it gets SIGTERM when the parent dies (DVC killed alone
  leaves no stage behind: pipeline.run.interrupt);
- the CPU kernels torch may use are pinned (pipeline.run.numerics), which must happen before
  torch is imported.
Under DVC (which names the stage in DVC_STAGE), the stage's inputs are checked against
dvc.lock before it runs, and DVC's cache against its fresh outputs after
(pipeline.files.verify).
"""

import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline import stages
from pipeline.files import atomic, lock  # no third-party import: before the check below
from pipeline.run import interrupt, numerics

EXIT_USAGE = 2
# top-level modules of requirements.txt that the stages import
REQUIRED = (
    "ruamel", "yaml", "pydantic", "numpy", "pandas", "torch", "matplotlib", "torchviz", "tqdm"
)  # fmt: skip
EXIT_DISK_FULL = 1
DVC_STAGE = "DVC_STAGE"  # DVC sets it for every stage command: the stage's address


def missing_modules(names: tuple[str, ...] = REQUIRED) -> list[str]:
    """The modules of `names` this interpreter cannot import (found without importing)."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def stage_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(stages.__path__))


def main(argv: list[str] | None = None) -> None:
    parent = os.getppid()  # first: a parent gone by the time it is read cannot be watched
    args = sys.argv[1:] if argv is None else argv
    names = stage_names()
    if not args or args[0] not in names:
        given = repr(args[0]) if args else "nothing"
        print(
            f"usage: python -m pipeline STAGE [options]; STAGE = {given}: allowed: "
            f"{', '.join(names)}",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)
    if missing := missing_modules():
        print(
            f"error: {sys.executable} lacks gradlab's dependencies (no module "
            f"{', '.join(missing)}): run `make repro` / `make publish`, or "
            "`source .venv/bin/activate` before dvc (`make setup` creates .venv)",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)
    interrupt.end_with_parent(parent)  # DVC stopped alone does not stop its stage
    numerics.pin_kernels()
    stage = importlib.import_module(f"pipeline.stages.{args[0]}")
    try:
        run(stage.main, args[1:], os.environ.get(DVC_STAGE))
    except (atomic.DiskFull, OSError) as e:
        if not isinstance(e, atomic.DiskFull):
            if not atomic.full(e):
                raise
            e = atomic.DiskFull(Path(e.filename or Path.cwd()))
        recorded = lock.recorded(Path.cwd()).get(os.path.relpath(e.path))  # its last size
        print(f"error: {e.line(recorded.size if recorded else None)}", file=sys.stderr)
        raise SystemExit(EXIT_DISK_FULL) from None


def run(stage: Callable[[list[str]], None], args: list[str], address: str | None) -> None:
    """The stage's main(args); under DVC (`address`: DVC_STAGE), with its inputs checked
    against dvc.lock before and DVC's cache against its outputs after."""
    if address is None:
        return stage(args)
    from pipeline.files import inputs, verify

    name = address.rpartition(":")[2]  # env/dvc.yaml:env -> env
    with inputs.or_exit():
        for note in verify.before(Path.cwd(), name):
            print(note, file=sys.stderr)
    stage(args)
    for note in verify.outputs(Path.cwd(), name):
        print(note, file=sys.stderr)


if __name__ == "__main__":
    main()
