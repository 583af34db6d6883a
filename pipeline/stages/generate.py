"""Stage `generate`: the data. The grid's points (`generate.preset`) as CSV (x, y); the
study's: every scenario's points for every study seed, and the classification points."""

import argparse
from pathlib import Path

from pipeline import params
from pipeline.files import atomic
from pipeline.grid import data
from pipeline.study import scenarios


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="the grid's points")
    parser.add_argument("--scenarios", type=Path, help="the study's points, every scenario")
    parser.add_argument("--classes", type=Path, help="the study's classification points")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    atomic.write_text(args.out, data.to_csv(*data.points(p.generate)))
    seeds = scenarios.study_seeds(p.study)
    if args.scenarios:
        found = {n: scenarios.points(n, p.scenarios[n], seeds) for n in p.study.scenarios}
        atomic.write_text(args.scenarios, scenarios.scenarios_csv(found))
    if args.classes:
        classes = scenarios.classes(p.study.classification, seeds)
        atomic.write_text(args.classes, scenarios.classes_csv(classes))
