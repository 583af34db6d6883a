"""What the drift check found, and how it reads: as Markdown and as a terminal table.

`pipeline.drift.check` fills a Report by comparing two sides; here are the Report itself and its
two renderings, which say the same things in the same order.
"""

import json
import math
from dataclasses import dataclass, field
from enum import Enum

from pipeline import params
from pipeline.files import markdown as md

Value = float | int | str | None  # one field of a per-cell table (None: empty)


class Absent(Enum):
    """A metric one side has and the other has not."""

    ABSENT = "absent"


ABSENT = Absent.ABSENT


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
    """Everything the check found: each change, rows on one side only, and what changed
    since the baseline that decides the numbers (params, code, environment)."""

    tolerances: params.DriftParams
    compared: int  # rows present on both sides
    changes: list[Change]  # every value that is not bitwise the same, drifted or not
    missing: list[str]  # rows in the baseline only
    new: list[str]  # rows in this run only
    env: list[tuple[str, object, object]] = field(default_factory=list)  # (field, old, new)
    params: list[tuple[str, object, object]] = field(default_factory=list)  # (key, old, new)
    code: list[str] = field(default_factory=list)  # files that differ from the baseline's
    tables: tuple[str, ...] = ("cells",)  # the tables compared; rows of the first unprefixed

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

    def table(self, row: str) -> str:
        """The table a row key belongs to (`summary:noisy-mse-sgd-none`: summary)."""
        return row.split(":", 1)[0] if ":" in row else self.tables[0]


Table = tuple[str, str, tuple[str, ...], list[tuple[str, ...]]]  # title, note, header, rows
COLUMNS = ("row", "metric", "baseline", "current", "difference", "allowed")
SCREEN = 20  # rows of a section on the terminal and in the job summary; the file has all


def _text(value: object) -> str:
    return "absent" if value is ABSENT else json.dumps(value)


def _row(c: Change) -> tuple[str, ...]:
    if c.diff is None:
        return (c.cell, c.metric, _text(c.old), _text(c.new), "not comparable", "-")
    return (c.cell, c.metric, _text(c.old), _text(c.new), f"{c.diff:+.3g}", f"{c.allowed:.3g}")


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _outside(c: Change) -> float:
    """How far outside (or inside) its tolerance a change is: |difference| / allowed; inf
    when not comparable or nothing is allowed."""
    if c.diff is None or c.allowed is None:
        return math.inf
    return abs(c.diff) / c.allowed if c.allowed else (math.inf if c.diff else 0.0)


def verdict(report: Report) -> str:
    """One sentence: what differs, and whether the check passes."""
    rows = len({c.cell for c in report.drifted})
    parts = [
        (f"{_count(len(report.drifted), 'value')} drifted in {_count(rows, 'row')}", rows),
        (f"{_count(len(report.missing), 'row')} missing", len(report.missing)),
        (_count(len(report.new), "new row"), len(report.new)),
        (f"{_count(len(report.within), 'value')} within tolerance", len(report.within)),
    ]
    what = "; ".join(text for text, n in parts if n) or "every value bitwise identical"
    return f"{what[0].upper()}{what[1:]}: the check {'passes' if report.ok else 'fails'}."


def rule(tolerances: params.DriftParams) -> str:
    d, overrides = tolerances.default, sorted(tolerances.metrics.items())
    return f"|new - old| <= abs + rel * |old|, default abs {d.abs:g}, rel {d.rel:g}" + "".join(
        f"; {m}: abs {t.abs:g}, rel {t.rel:g}" for m, t in overrides
    )


def changed(report: Report) -> list[tuple[str, ...]]:
    """What changed since the baseline that decides the numbers, one row per difference:
    (what, name, baseline, current)."""
    rows: list[tuple[str, ...]] = [
        ("params.yaml", k, _text(a), _text(b)) for k, a, b in report.params
    ]
    rows += [("code", path, "-", "changed") for path in report.code]
    rows += [("environment", f, _text(a), _text(b)) for f, a, b in report.env]
    return rows or [("nothing", "params.yaml, code and environment as in the baseline", "", "")]


def by_measure(report: Report) -> list[tuple[str, ...]]:
    """Per table and measure with drift: (table, measure, values drifted, largest
    |difference|, times its allowed difference), furthest outside first."""
    groups: dict[tuple[str, str], list[Change]] = {}
    for c in report.drifted:
        groups.setdefault((report.table(c.cell), c.metric), []).append(c)
    worst = {key: max(changes, key=_outside) for key, changes in groups.items()}
    order = sorted(groups, key=lambda k: (-_outside(worst[k]), -len(groups[k]), k))
    rows: list[tuple[str, ...]] = []
    for key in order:
        w = worst[key]
        largest = "not comparable" if w.diff is None else f"{abs(w.diff):.3g}"
        rows.append((*key, f"{len(groups[key]):,}", largest, f"{_outside(w):.3g}"))
    return rows


def tables(report: Report, baseline: str, limit: int | None, full: str | None) -> list[Table]:
    """The report's sections, each cut to its first `limit` rows (None: all, for the file
    `full`); empty ones are left out."""
    one_side: list[tuple[str, ...]] = [(c, "baseline only") for c in report.missing]
    one_side += [(c, "this run only") for c in report.new]
    drifted = sorted(report.drifted, key=_outside, reverse=True)
    closest = sorted(report.within, key=_outside, reverse=True)
    sections: list[Table] = [
        (
            f"Changed since {baseline}",
            "What decides the numbers; by itself a change here does not fail the check.",
            ("what", "name", "baseline", "current"),
            changed(report),
        ),
        (
            "Drifted, by table and measure",
            "Furthest outside its tolerance first.",
            ("table", "measure", "values", "largest |difference|", "x allowed"),
            by_measure(report),
        ),
        (
            "Drifted",
            "Outside the tolerance, or not two numbers; furthest outside first.",
            COLUMNS,
            [_row(c) for c in drifted],
        ),
        ("Rows on one side only", "Each one fails the check.", ("row", "found in"), one_side),
        (
            f"Within tolerance ({_count(len(closest), 'value')} not bitwise identical)",
            "Closest to their limit first.",
            COLUMNS,
            [_row(c) for c in closest],
        ),
    ]
    out = []
    for title, note, header, rows in sections:
        if limit is not None and len(rows) > limit:
            where = f"; all of them in {full}" if full else ""
            note, rows = f"{note} The first {limit} of {len(rows):,}{where}.", rows[:limit]
        out.append((title, note, header, rows))
    return [t for t in out if t[3]]


def _machine(ran_on: dict[str, str]) -> str:
    return (
        f"{ran_on['cpu']} ({ran_on['cpu_flags']}), {ran_on['cores']} cores, host {ran_on['host']}"
    )


def _compared(report: Report, baseline: str) -> str:
    return (
        f"{report.compared:,} rows of {', '.join(report.tables)} compared with {baseline}: "
        "the tables as the last `dvc repro` left them (`make rebuild` recomputes them)."
    )


def as_markdown(
    report: Report,
    baseline: str,
    ran_on: dict[str, str],
    limit: int | None = SCREEN,
    full: str | None = None,
) -> str:
    """The report for $GITHUB_STEP_SUMMARY or a pull request comment."""
    lines = [
        f"## Drift check: {report.status}",
        "",
        f"{_compared(report, f'`{baseline}`')} **{verdict(report)}**",
        f"Tolerance: `{rule(report.tolerances)}`.",
        f"Ran on: {_machine(ran_on)}.",
    ]
    for title, note, header, rows in tables(report, baseline, limit, full):
        lines += ["", f"### {title}", "", note, "", md.table(header, rows, tight=True)]
    return "\n".join(lines) + "\n"


def as_text(
    report: Report,
    baseline: str,
    ran_on: dict[str, str],
    limit: int | None = SCREEN,
    full: str | None = None,
) -> str:
    """The report as plain text with aligned columns: what changed first, then the drift
    by table and measure, then the values; each section cut to `limit` rows."""
    lines = [
        f"Drift check: {report.status}. {_compared(report, baseline)}",
        verdict(report),
        f"Tolerance: {rule(report.tolerances)}.",
        f"Ran on: {_machine(ran_on)}.",
    ]
    for title, note, header, rows in tables(report, baseline, limit, full):
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines += ["", f"{title}. {note}"]
        for row in [header, *rows]:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)
