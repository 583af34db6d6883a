"""`python -m pipeline <stage> [options]`: run one stage, as dvc.yaml's commands do.

Before anything is imported, two things happen here, at the edge:
- the interpreter is checked for gradlab's dependencies: a stage started by a `python`
  that is not the project's (e.g. `.venv/bin/dvc repro` with a bare system Python on
  PATH) says so in one line instead of a traceback;
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
from pathlib import Path

from pipeline import stages
from pipeline.run import numerics

EXIT_USAGE = 2
# top-level modules of requirements.txt that the stages import
REQUIRED = (
    "ruamel", "yaml", "pydantic", "numpy", "pandas", "torch", "matplotlib", "torchviz", "tqdm"
)  # fmt: skip
DVC_STAGE = "DVC_STAGE"  # DVC sets it for every stage command: the stage's address


def missing_modules(names: tuple[str, ...] = REQUIRED) -> list[str]:
    """The modules of `names` this interpreter cannot import (found without importing)."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def stage_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(stages.__path__))


def main(argv: list[str] | None = None) -> None:
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
    numerics.pin_kernels()
    stage = importlib.import_module(f"pipeline.stages.{args[0]}")
    if (address := os.environ.get(DVC_STAGE)) is None:
        return stage.main(args[1:])
    from pipeline.files import inputs, verify

    name = address.rpartition(":")[2]  # env/dvc.yaml:env -> env
    with inputs.or_exit():
        for note in verify.before(Path.cwd(), name):
            print(note, file=sys.stderr)
    stage.main(args[1:])
    for note in verify.outputs(Path.cwd(), name):
        print(note, file=sys.stderr)


if __name__ == "__main__":
    main()
