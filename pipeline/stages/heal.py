"""`make heal`: DVC's cache and the outputs brought back in line with dvc.lock
(pipeline.files.verify.heal). Damaged cache entries are removed; each output that differs
from dvc.lock is restored from the cache, or its stage rebuilt; `make heal` then runs
`dvc repro`. Each step is printed; DVC's own errors are shown as DVC prints them."""

import argparse
import subprocess
import sys
from pathlib import Path

from pipeline.files import verify


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args(argv)
    root = Path.cwd()

    def dvc(args: list[str]) -> None:
        print(f"dvc {' '.join(args)}", flush=True)
        subprocess.run(["dvc", *args], cwd=root, check=True)

    done = []
    try:
        for line in verify.heal(root, dvc):
            print(line, flush=True)
            done.append(line)
    except subprocess.CalledProcessError as e:
        print(f"error: `{' '.join(map(str, e.cmd))}` failed, as DVC says above", file=sys.stderr)
        raise SystemExit(1) from None
    if not done:
        print("nothing to heal: the outputs and DVC's cache match dvc.lock")
