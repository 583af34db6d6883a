"""Stage `generate`: the points of `generate.preset` as CSV (x, y)."""

import argparse
from pathlib import Path

from pipeline import atomic, data, params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    atomic.write_text(args.out, data.to_csv(*data.points(p.generate)))
