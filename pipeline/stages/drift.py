"""`make drift`: the per-row tables as the last `dvc repro` left them, against the
baseline committed in git.

It says first what changed since the baseline (params.yaml, code, environment), then the
drift by table and measure, then a screenful of values; --full gets every one. Exit 0:
identical or within tolerance; 1: drift, or rows missing or new; 2: bad input. The report
also names the machine it ran on (CPU, flags, host): recorded here, never in a tracked
file.
"""

import argparse
import os
from pathlib import Path

from pipeline import params
from pipeline.drift import check
from pipeline.drift.report import as_markdown, as_text
from pipeline.files import atomic, inputs
from pipeline.run import machine

EXIT_DRIFT = 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--tables",
        type=Path,
        nargs="+",
        default=[Path("reports/cells.csv")],
        help="per-row tables keyed by their first column: the grid's cells.csv first",
    )
    parser.add_argument("--env", type=Path, default=Path("reports/env.json"))
    parser.add_argument("--baseline-rev", default="HEAD", help="git revision of the baseline")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report here")
    parser.add_argument("--full", type=Path, help="the whole report: every value, every row")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    with inputs.or_exit():
        report = check.load(args.tables, args.env, args.baseline_rev, p.drift, args.params)
    ran_on = machine.describe(machine.cpuinfo())
    full = str(args.full) if args.full else None
    if args.full:
        atomic.write_text(args.full, as_text(report, args.baseline_rev, ran_on, None) + "\n")
    print(as_text(report, args.baseline_rev, ran_on, full=full))
    text = as_markdown(report, args.baseline_rev, ran_on, full=full)
    if args.markdown:
        atomic.write_text(args.markdown, text)
    if step_summary := os.environ.get("GITHUB_STEP_SUMMARY"):  # set by GitHub Actions
        with open(step_summary, "a", encoding="utf-8") as f:
            f.write(text)
    if not report.ok:
        raise SystemExit(EXIT_DRIFT)
