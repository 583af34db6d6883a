"""What the drift check found, and how it reads: as Markdown and as a terminal table.

`pipeline.drift.check` fills a Report by comparing two sides; here are the Report itself and its
two renderings, which say the same things in the same order.
"""

import json
from dataclasses import dataclass, field
from enum import Enum

from pipeline import params
from pipeline.files import markdown as md

SHOWN = 10  # values within tolerance listed (those closest to their limit)
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
    """Everything the check found: each change, cells on one side only, environment diffs."""

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


def _machine(ran_on: dict[str, str]) -> str:
    return (
        f"{ran_on['cpu']} ({ran_on['cpu_flags']}), {ran_on['cores']} cores, host {ran_on['host']}"
    )


def as_markdown(report: Report, baseline: str, ran_on: dict[str, str]) -> str:
    """The report for $GITHUB_STEP_SUMMARY or a pull request comment."""
    lines = [
        f"## Drift check: {report.status}",
        "",
        f"{report.compared} cells compared with the baseline committed at `{baseline}`: "
        f"**{verdict(report)}**",
        f"Tolerance: `{rule(report.tolerances)}`.",
        f"Ran on: {_machine(ran_on)}.",
    ]
    for title, note, header, rows in tables(report):
        lines += ["", f"### {title}", "", note, "", md.table(header, rows, tight=True)]
    return "\n".join(lines) + "\n"


def as_text(report: Report, baseline: str, ran_on: dict[str, str]) -> str:
    """The report as plain text with aligned columns."""
    lines = [
        f"Drift check: {report.status}. {report.compared} cells compared with {baseline}.",
        verdict(report),
        f"Tolerance: {rule(report.tolerances)}.",
        f"Ran on: {_machine(ran_on)}.",
    ]
    for title, note, header, rows in tables(report):
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines += ["", f"{title}. {note}"]
        for row in [header, *rows]:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)
