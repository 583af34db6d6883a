"""Markdown tables: the one formatter compare, walkthrough and drift write theirs with."""

import re

import pytest

from pipeline.files import markdown as md


def parsed(text: str) -> tuple[list[str], list[str | None]]:
    """Each cell's text and alignment as a CommonMark + GFM table parser reads `text`."""
    import markdown_it  # pinned in requirements.txt (rich depends on it)

    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(text)
    cells = ["".join(c.content for c in t.children or []) for t in tokens if t.type == "inline"]
    styles = [t.attrs.get("style") for t in tokens if t.type in ("th_open", "td_open")]
    return cells, [str(s) if s else None for s in styles]


def test_plain_table_writes_cells_as_they_are() -> None:
    """Without align: header, a `| --- |` rule, one line per row, no padding, no final newline."""
    text = md.table(("x", "target"), [("1", "2"), ("10", "20")])
    assert text == "| x | target |\n| --- | --- |\n| 1 | 2 |\n| 10 | 20 |"


def test_tight_rule_has_no_spaces() -> None:
    """tight=True writes the rule as `|---|---|`; the other lines are unchanged."""
    text = md.table(("cell", "found in"), [("a", "baseline only")], tight=True)
    assert text.splitlines() == ["| cell | found in |", "|---|---|", "| a | baseline only |"]


def test_aligned_table_pads_columns_and_marks_right_ones() -> None:
    """With align each column is as wide as its widest cell (at least 3) and justified."""
    text = md.table(("cell", "n"), [("mse-sgd", "1.5"), ("l1", "10")], ["left", "right"])
    assert text.splitlines() == [
        "| cell    |   n |",
        "| ------- | --: |",
        "| mse-sgd | 1.5 |",
        "| l1      |  10 |",
    ]


def test_a_parser_reads_back_the_cells_and_their_alignment() -> None:
    """A GFM parser finds every cell, `|` included, and the right alignment per column."""
    rows = [("a|b", "1"), ("", "22")]
    aligns: list[list[md.Align] | None] = [None, ["left", "right"]]
    for align in aligns:
        cells, styles = parsed(md.table(("name", "value"), rows, align))
        assert cells == ["name", "value", "a|b", "1", "", "22"]
        right = "text-align:right" if align else None
        assert styles == [None, right] * 3


def test_a_pipe_in_a_cell_is_escaped_and_counted_in_the_width() -> None:
    """`|` becomes `\\|` in header and rows, and padding is measured on the escaped text."""
    text = md.table(("a|b",), [("|",)], ["left"])
    assert text.splitlines() == ["| a\\|b |", "| ---- |", "| \\|   |"]


def test_no_rows_gives_header_and_rule() -> None:
    """An empty table is its header and rule; aligned columns are as wide as the header."""
    assert md.table(("a", "b"), []) == "| a | b |\n| --- | --- |"
    assert md.table(("a", "long"), [], ["right", "left"]) == "|   a | long |\n| --: | ---- |"


@pytest.mark.parametrize(
    ("rows", "align", "message"),
    [
        ([("1",)], None, "2 columns in the header, 1 in the row ['1']"),
        ([()], None, "2 columns in the header, 0 in the row []"),
        ([("1", "2")], ["left"], "2 columns in the header, 1 alignments"),
    ],
)
def test_a_row_or_align_of_the_wrong_length_is_rejected(
    rows: list[tuple[str, ...]], align: list[md.Align] | None, message: str
) -> None:
    """A row or an align list not as long as the header raises ValueError naming both."""
    with pytest.raises(ValueError, match=re.escape(message)):
        md.table(("a", "b"), rows, align)
