"""`make prune`: the local MLflow store's artifacts pruned (pipeline.tracking.prune): the
runs in MLflow's trash deleted for good, then the folders of mlartifacts/ whose run the
store no longer holds, each named as it goes."""

import argparse
import subprocess
import sys
from pathlib import Path

from pipeline.tracking import location, prune


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args(argv)
    root = Path.cwd()

    def run(cmd: list[str]) -> None:
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)

    try:
        for line in prune.prune(location.default_uri(root), root, run):
            print(line)
    except location.TrackingError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except subprocess.CalledProcessError as e:
        print(f"error: `{' '.join(e.cmd)}` failed: {e.stderr.decode().strip()}", file=sys.stderr)
        raise SystemExit(1) from None
