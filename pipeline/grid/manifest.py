"""What `train` trained: every cell with its settings and measures, the data, the traces.

Train writes it into its traces folder, so it is swapped in with the traces, atomically.
Compare and publish take every cell, its settings, measures and trace from here, never
from the current params.yaml, which may have changed since training (`dvc exp run -S`
leaves its edits behind even when the run fails).
"""

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Self

from pipeline import grid
from pipeline.files.digest import combine, sha
from pipeline.files.inputs import InputError, read_json
from pipeline.grid.trace import Measures

FILE = "manifest.json"
FORMAT = 1


@dataclass(frozen=True)
class Entry:
    """One trained cell: its settings, the sha256 of its trace file, its measures."""

    cell: grid.Cell
    trace: str
    measures: Measures

    def key(self, data: str) -> str:
        """Equal settings, data and trace give an equal key: republishing adds nothing."""
        settings = json.dumps(self.cell.settings(), sort_keys=True).encode()
        return combine(sha(settings), data, self.trace)


@dataclass(frozen=True)
class Manifest:
    data: str  # sha256 of the points file trained on
    optimum: tuple[float, float]  # the line the points were drawn from (dist_to_optimum)
    entries: list[Entry]

    @cached_property
    def source(self) -> str:
        """A digest of everything train wrote; compare stamps it on its outputs."""
        return combine(self.data, *(e.key(self.data) for e in self.entries))

    def cells(self) -> list[grid.Cell]:
        return [e.cell for e in self.entries]

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "data": self.data,
            "optimum": list(self.optimum),
            "source": self.source,
            "cells": [
                {"cell": e.cell.to_json(), "trace": e.trace, "measures": e.measures}
                for e in self.entries
            ],
        }

    def write(self, folder: Path) -> None:
        text = json.dumps(self.to_json(), indent=1, sort_keys=True, allow_nan=False)
        (folder / FILE).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> Self:
        """The manifest in `folder`; InputError naming the file when missing or malformed."""
        path = folder / FILE
        doc = read_json(path, "train")
        try:
            assert isinstance(doc, dict) and doc["format"] == FORMAT
            entries = [
                Entry(grid.Cell.from_json(c["cell"]), str(c["trace"]), dict(c["measures"]))
                for c in doc["cells"]
            ]
            manifest = cls(str(doc["data"]), tuple(doc["optimum"]), entries)  # type: ignore[arg-type]
        except (AssertionError, KeyError, TypeError, ValueError):
            raise InputError(
                f"{path}: not a gradlab manifest of format {FORMAT} (run `dvc repro train`)"
            ) from None
        return manifest


STAMP = "Made from the training outputs `{}`."  # a line of compare.md; publish reads it back
_STAMP = re.compile(r"^Made from the training outputs `([0-9a-f]+)`\.$", re.MULTILINE)


def stamp(source: str) -> str:
    """The line a report made from training outputs `source` carries."""
    return STAMP.format(source)


def stamped(text: str) -> str | None:
    """The training outputs a report says it was made from, or None."""
    found = _STAMP.search(text)
    return found.group(1) if found else None
