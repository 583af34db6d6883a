"""train's manifest: what was trained, read back exactly, keyed by content."""

import json
from pathlib import Path

import pytest

from pipeline import grid, params
from pipeline.files.digest import sha
from pipeline.files.inputs import InputError
from pipeline.grid.manifest import Entry, Manifest, stamp, stamped

MEASURES = {"final_loss": 0.5, "diverged": 0, "diverged_step": None}


def manifest(committed: params.Params, n: int = 3) -> Manifest:
    cells = grid.cells(committed.train)[:n]
    entries = [Entry(c, sha(c.name.encode()), dict(MEASURES)) for c in cells]
    return Manifest(sha(b"points"), (2.0, 0.0), entries)


def test_a_manifest_reads_back_equal(committed: params.Params, tmp_path: Path) -> None:
    """Written then read, a manifest has the same cells, settings, measures and source."""
    written = manifest(committed)

    written.write(tmp_path)
    back = Manifest.read(tmp_path)

    assert back == written and back.source == written.source
    assert back.cells() == grid.cells(committed.train)[:3]


def test_the_key_changes_with_settings_data_or_trace(committed: params.Params) -> None:
    """Equal content gives an equal key; a changed setting, data or trace gives another."""
    entry = manifest(committed).entries[0]
    other_lr = {**entry.cell.optimizer_kwargs, "lr": 0.123}
    changed = Entry(
        grid.Cell(**{**entry.cell.__dict__, "optimizer_kwargs": other_lr}),
        entry.trace,
        entry.measures,
    )

    keys = {
        entry.key("d1"),
        changed.key("d1"),
        entry.key(sha(b"other data")),
        Entry(entry.cell, sha(b"other trace"), entry.measures).key("d1"),
    }

    assert entry.key("d1") == Entry(entry.cell, entry.trace, {}).key("d1")
    assert len(keys) == 4


@pytest.mark.parametrize("text", ["", "[]", '{"format": 99}', '{"format": 1, "cells": [{}]}'])
def test_a_broken_manifest_is_named(tmp_path: Path, text: str) -> None:
    """A missing, foreign or malformed manifest is an InputError naming it and the stage."""
    if text:
        (tmp_path / "manifest.json").write_text(text)

    with pytest.raises(InputError, match=r"manifest\.json.*dvc repro train"):
        Manifest.read(tmp_path)


def test_a_report_stamp_reads_back(committed: params.Params) -> None:
    """stamped() finds the source a report's stamp line names, and None without one."""
    source = manifest(committed).source

    assert stamped(f"# title\n\n{stamp(source)}\n\n| table |") == source
    assert stamped("# title without a stamp") is None


def test_no_nan_or_inf_in_a_manifest(committed: params.Params, tmp_path: Path) -> None:
    """A manifest is strict JSON: a non-finite measure is refused, not written as NaN."""
    m = manifest(committed, 1)
    bad = Manifest(m.data, m.optimum, [Entry(m.entries[0].cell, "t", {"final_loss": float("nan")})])

    with pytest.raises(ValueError):
        bad.write(tmp_path)
    assert json.loads(json.dumps(m.to_json(), allow_nan=False))["format"] == 1
