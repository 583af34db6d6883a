"""`make repro`: `dvc repro` printing what the stages print, and DVC's warnings and errors,
without DVC's progress notes ("Running stage", "Updating lock file", "Use `dvc push`").

`dvc repro --quiet` drops those notes but also DVC's own errors: a YAML syntax error in
params.yaml printed nothing but make's `Error 255`. DVC has no flag for "errors only";
its CLI (dvc.cli.main) gives exactly that when it has no Python-level stdout, the case it
handles for its daemon: INFO off, warnings and errors on stderr. The stages are other
processes writing to file descriptor 1, which stays open, so they still print.

Usage: python tools/repro.py [dvc repro options]
"""

import sys

from dvc.cli import main

if __name__ == "__main__":
    sys.stdout = None  # type: ignore[assignment]  # see above: DVC's notes off, not its errors
    raise SystemExit(main(["repro", *sys.argv[1:]]))
