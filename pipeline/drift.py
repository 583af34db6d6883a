"""Drift check: this run's metrics of every cell against the committed baseline.

The baseline is reports/metrics.json and reports/env.json as committed in git (both are
`cache: false` DVC outputs), read with `git show REV:PATH`; the current values are the same
files in the working tree, e.g. after `dvc repro --force`. A number passes when
|new - old| <= abs + rel * |old| (params.yaml `drift`); null <-> number, a changed text, and
a metric or a cell on one side only are drift. (`dvc metrics diff` has no tolerance and no
failing exit code: DVC issue #10408.)

Exit 0: identical or within tolerance; 1: drift, or cells missing or new; 2: bad input.
Environment fields that differ are reported to explain drift; alone they do not fail.
"""

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import cast

from pipeline import atomic, params

EXIT_DRIFT = 1
SHOWN = 10  # values within tolerance listed (those closest to their limit)
Value = float | int | str | None
Metrics = dict[str, dict[str, Value]]  # cell name -> record.summary() of that cell


class Absent(Enum):
    """A metric one side has and the other has not."""

    ABSENT = "absent"


ABSENT = Absent.ABSENT


def same(old: Value | Absent, new: Value | Absent) -> bool:
    """Bitwise equal: the same type and bits (-0.0 is not 0.0; NaN equals NaN)."""
    if isinstance(old, float) and isinstance(new, float):
        return old.hex() == new.hex()
    return type(old) is type(new) and old == new


@dataclass(frozen=True)
class Change:
    """One metric of one cell whose value is not bitwise the baseline's."""

    cell: str
    metric: str
    old: Value | Absent
    new: Value | Absent
    diff: float | None  # new - old; None unless both values are numbers
    allowed: float | None  # abs + rel * |old|; None unless both values are numbers

    @property
    def drifted(self) -> bool:
        if self.diff is None or self.allowed is None:
            return True
        return not abs(self.diff) <= self.allowed  # written so that NaN drifts


@dataclass(frozen=True)
class Report:
    tolerances: params.DriftParams
    compared: int  # cells present on both sides
    changes: list[Change]  # every value that is not bitwise the same, drifted or not
    missing: list[str]  # cells in the baseline only
    new: list[str]  # cells in this run only
    env: list[tuple[str, object, object]] = field(default_factory=list)  # (field, old, new)

    @property
    def drifted(self) -> list[Change]:
        return [c for c in self.changes if c.drifted]

    @property
    def within(self) -> list[Change]:
        return [c for c in self.changes if not c.drifted]

    @property
    def ok(self) -> bool:
        return not (self.drifted or self.missing or self.new)

    @property
    def status(self) -> str:
        return "drifted" if not self.ok else "within tolerance" if self.changes else "identical"


def compare(baseline: Metrics, current: Metrics, tolerances: params.DriftParams) -> Report:
    """Every cell and metric of `current` checked against `baseline`."""
    changes = []
    for cell in sorted(baseline.keys() & current.keys()):
        old_cell, new_cell = baseline[cell], current[cell]
        for metric in sorted(old_cell.keys() | new_cell.keys()):
            old, new = old_cell.get(metric, ABSENT), new_cell.get(metric, ABSENT)
            if same(old, new):
                continue
            tol = tolerances.metrics.get(metric, tolerances.default)
            if isinstance(old, int | float) and isinstance(new, int | float):
                changes.append(
                    Change(cell, metric, old, new, new - old, tol.abs + tol.rel * abs(old))
                )
            else:  # null <-> number, a changed text, an absent metric
                changes.append(Change(cell, metric, old, new, None, None))
    return Report(
        tolerances=tolerances,
        compared=len(baseline.keys() & current.keys()),
        changes=changes,
        missing=sorted(baseline.keys() - current.keys()),
        new=sorted(current.keys() - baseline.keys()),
    )


def env_diff(old: dict[str, object], new: dict[str, object]) -> list[tuple[str, object, object]]:
    """(field, baseline, current) for each environment field that differs."""
    fields = sorted(old.keys() | new.keys())
    diff = [(f, old.get(f, ABSENT), new.get(f, ABSENT)) for f in fields]
    return [(f, a, b) for f, a, b in diff if a != b]


# --- the report, as Markdown and as a terminal table ------------------------------------
Table = tuple[str, str, tuple[str, ...], list[tuple[str, ...]]]  # title, note, header, rows
COLUMNS = ("cell", "metric", "baseline", "current", "difference", "allowed")


def _text(value: object) -> str:
    return "absent" if value is ABSENT else json.dumps(value)


def _row(c: Change) -> tuple[str, ...]:
    if c.diff is None:
        return (c.cell, c.metric, _text(c.old), _text(c.new), "not comparable", "-")
    return (c.cell, c.metric, _text(c.old), _text(c.new), f"{c.diff:+.3g}", f"{c.allowed:.3g}")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def verdict(report: Report) -> str:
    """One sentence: what differs, and whether the check passes."""
    cells = len({c.cell for c in report.drifted})
    parts = [
        (f"{_count(len(report.drifted), 'value')} drifted in {_count(cells, 'cell')}", cells),
        (f"{_count(len(report.missing), 'cell')} missing", len(report.missing)),
        (_count(len(report.new), "new cell"), len(report.new)),
        (f"{_count(len(report.within), 'value')} within tolerance", len(report.within)),
    ]
    what = "; ".join(text for text, n in parts if n) or "every value bitwise identical"
    return f"{what[0].upper()}{what[1:]}: the check {'passes' if report.ok else 'fails'}."


def rule(tolerances: params.DriftParams) -> str:
    d, overrides = tolerances.default, sorted(tolerances.metrics.items())
    return f"|new - old| <= abs + rel * |old|, default abs {d.abs:g}, rel {d.rel:g}" + "".join(
        f"; {m}: abs {t.abs:g}, rel {t.rel:g}" for m, t in overrides
    )


def tables(report: Report) -> list[Table]:
    """The report's sections; empty ones are left out."""
    ratio = lambda c: abs(c.diff or 0) / (c.allowed or 1)  # noqa: E731  # share of its limit
    closest = sorted(report.within, key=ratio, reverse=True)
    cut = f"; the first {SHOWN} of them" if len(closest) > SHOWN else ""
    one_side: list[tuple[str, ...]] = [(c, "baseline only") for c in report.missing]
    one_side += [(c, "this run only") for c in report.new]
    candidates: list[Table] = [
        (
            "Drifted",
            "Outside the tolerance, or not two numbers.",
            COLUMNS,
            [_row(c) for c in report.drifted],
        ),
        ("Cells on one side only", "Each one fails the check.", ("cell", "found in"), one_side),
        (
            f"Within tolerance ({_count(len(closest), 'value')} not bitwise identical)",
            f"Closest to their limit first{cut}.",
            COLUMNS,
            [_row(c) for c in closest[:SHOWN]],
        ),
        (
            "Environment fields that differ from the baseline's",
            "They may explain drift; by themselves they do not fail the check.",
            ("field", "baseline", "current"),
            [(f, _text(a), _text(b)) for f, a, b in report.env],
        ),
    ]
    return [t for t in candidates if t[3]]


def markdown(report: Report, baseline: str) -> str:
    """The report for $GITHUB_STEP_SUMMARY or a pull request comment."""
    lines = [
        f"## Drift check: {report.status}",
        "",
        f"{report.compared} cells compared with the baseline committed at `{baseline}`: "
        f"**{verdict(report)}**",
        f"Tolerance: `{rule(report.tolerances)}`.",
    ]
    for title, note, header, rows in tables(report):
        lines += ["", f"### {title}", "", note, "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def terminal(report: Report, baseline: str) -> str:
    """The report as plain text with aligned columns."""
    lines = [
        f"Drift check: {report.status}. {report.compared} cells compared with {baseline}.",
        verdict(report),
        f"Tolerance: {rule(report.tolerances)}.",
    ]
    for title, note, header, rows in tables(report):
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines += ["", f"{title}. {note}"]
        for row in [header, *rows]:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


# --- reading the two sides --------------------------------------------------------------
class InputError(ValueError):
    """A baseline or current file that cannot be read; the message names it."""


def committed(path: Path, rev: str) -> str:
    """The text of `path` (relative to the working directory) as committed at `rev`."""
    spec = f"{rev}:./{os.path.relpath(path)}"
    try:
        run = subprocess.run(
            ["git", "show", spec], capture_output=True, text=True, encoding="utf-8"
        )
    except FileNotFoundError:
        raise InputError("git not found: the baseline is read from git") from None
    if run.returncode != 0:
        reason = (run.stderr.strip().splitlines() or [f"git exited with {run.returncode}"])[-1]
        raise InputError(f"no baseline {path} at {rev}: {reason}")
    return run.stdout


def _object(text: str, source: str) -> dict[str, object]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object")
    return data


def _metrics(text: str, source: str) -> Metrics:
    data = _object(text, source)
    for cell, values in data.items():
        if not isinstance(values, dict) or not all(
            isinstance(v, int | float | str | None) for v in values.values()
        ):
            raise InputError(f"{source}: cell {cell!r} is not an object of numbers, texts, nulls")
    return cast(Metrics, data)  # checked just above


def _current(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: not found (rebuild the study first: make rebuild)") from None


def load(metrics: Path, env: Path, rev: str, tolerances: params.DriftParams) -> Report:
    """The report for the working tree's `metrics` and `env` against their versions at `rev`."""
    old = _metrics(committed(metrics, rev), f"{metrics} at {rev}")
    new = _metrics(_current(metrics), str(metrics))
    known = {m for side in (old, new) for cell in side.values() for m in cell}
    if unknown := sorted(set(tolerances.metrics) - known):  # a typo would silently not apply
        names = ", ".join(f"drift.metrics.{name}" for name in unknown)
        raise InputError(f"params: {names}: no such metric; known: {', '.join(sorted(known))}")
    env_old = _object(committed(env, rev), f"{env} at {rev}")
    return replace(
        compare(old, new, tolerances), env=env_diff(env_old, _object(_current(env), str(env)))
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, default=Path("reports/metrics.json"))
    parser.add_argument("--env", type=Path, default=Path("reports/env.json"))
    parser.add_argument("--baseline-rev", default="HEAD", help="git revision of the baseline")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    try:
        report = load(args.metrics, args.env, args.baseline_rev, p.drift)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(params.EXIT_BAD_INPUT) from None
    print(terminal(report, args.baseline_rev))
    text = markdown(report, args.baseline_rev)
    if args.markdown:
        atomic.write_text(args.markdown, text)
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):  # set by GitHub Actions
        with open(summary, "a", encoding="utf-8") as f:
            f.write(text)
    if not report.ok:
        raise SystemExit(EXIT_DRIFT)


if __name__ == "__main__":
    main()
