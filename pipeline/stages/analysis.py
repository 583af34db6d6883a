"""Stage `analysis`: what the study found, as tables (reports/study/*.csv) and one
self-contained HTML report, from the study's outputs only.

Prints the tuned winner per scenario and loss, with its interval, and the report's path.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import params
from pipeline.files import atomic, inputs
from pipeline.grid.manifest import combine, sha
from pipeline.study import analysis, report

if TYPE_CHECKING:
    import pandas as pd

TABLES = ("summary", "classes", "stability", "robustness", "improvement", "profiles", "twins")


def read(path: Path, stage: str) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except FileNotFoundError:
        raise inputs.InputError(f"{path}: file not found (run `dvc repro {stage}`)") from None


def read_record(path: Path) -> params.StudyRecord:
    """The study's manifest: what it ran; InputError if missing or not one."""
    from pydantic import ValidationError

    doc = inputs.read_json(path, "study")
    try:
        return params.StudyRecord.model_validate(doc)
    except ValidationError:
        raise inputs.InputError(f"{path}: not a study manifest (run `dvc repro study`)") from None


def winners_text(summary: pd.DataFrame) -> str:
    """The winner of each scenario and loss, one line each."""
    lines = [
        "Tuned winners (lowest IQM steps to target, 95% CI, reporting seeds; stayed: the"
        " share of seeds still within tol at the end):"
    ]
    for row in analysis.winners(summary).itertuples(index=False):
        ci = f"[{row.iqm_lo:.4g}, {row.iqm_hi:.4g}]"
        lines.append(
            f"  {row.scenario:<11} {row.loss:<9} {row.optimizer + '+' + row.clip:<16} "
            f"lr {row.tuned_lr:<9.3g} IQM {row.iqm_steps:<6.4g} {ci:<16} "
            f"stayed {row.stayed_rate:.0%}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--cells", type=Path, required=True, help="study's cells.parquet")
    parser.add_argument("--traces", type=Path, required=True, help="study's traces.parquet")
    parser.add_argument("--classes", type=Path, required=True, help="study's classes.parquet")
    parser.add_argument("--grid", type=Path, required=True, help="train's reports/cells.csv")
    parser.add_argument("--manifest", type=Path, required=True, help="study's manifest.json")
    parser.add_argument("--out", type=Path, required=True, help="folder of the tables")
    parser.add_argument("--html", type=Path, required=True, help="the report")
    parser.add_argument("--metrics", type=Path, required=True, help="the headline figures")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    import pandas as pd

    with inputs.or_exit():
        cells, traces = read(args.cells, "study"), read(args.traces, "study")
        classes, grid = read(args.classes, "study"), read(args.grid, "train")
        ran = read_record(args.manifest)
    b = p.analysis.bootstrap
    found = {
        **analysis.tables(cells, grid, b.reps, b.seed),
        "classes": analysis.classes(classes, b.reps, b.seed),
    }
    for name in TABLES:
        atomic.write_text(args.out / f"{name}.csv", found[name].to_csv(index=False))
    atomic.write_text(args.html, report.html(found, cells, traces, ran, p.analysis.bootstrap))
    source = combine(*(sha(f.read_bytes()) for f in (args.cells, args.traces, args.classes)))
    atomic.write_json(args.metrics, {**analysis.headline(found), "source": source})
    print(winners_text(pd.concat([found["summary"], found["classes"]], ignore_index=True)))
    print(f"Report: {args.html.resolve().as_uri()}")
