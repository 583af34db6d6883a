"""The explorer's runs as the page embeds them: a JSON index and one float32 block.

Every run is a setting (scenario, loss, optimizer, clip, lr, seed), the data set it
trained on, its start, and a table of recorded steps (`step` and the values its source
keeps: every trace column for the grid, the parameters for the study). The tables go into
one float32 array, each run's column after column; the index says where. Both travel
gzip-compressed in base64 inside the page (the browser's DecompressionStream opens them),
the float block with its bytes grouped by significance first (byte 0 of every float, then
byte 1, ...): neighbouring values share their high bytes, which gzip then finds.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.lazy import np

if TYPE_CHECKING:
    import numpy.typing as npt

    Floats = npt.NDArray[np.float32]

SCALARS = ("init_weight", "init_bias", "rate", "rho")  # per run, before its table


@dataclass(frozen=True)
class Run:
    """One run the page can show."""

    kind: str  # where it comes from: a key of Runs.kinds
    scenario: str
    loss: str
    optimizer: str
    clip: str
    lr: float
    seed: int
    dataset: int  # index into the page's data sets
    surface: int  # index into the page's surfaces: its loss (and parameter) on its data set
    initial: tuple[float, float]  # (weight, bias) before the first step
    columns: tuple[str, ...]  # of `values`: "step" first, or its kind's steps (Runs.steps)
    values: Floats  # (recorded steps, columns)
    name: str = ""  # the grid cell's name, the study configuration's
    diverged_step: int | None = None
    rate: float = math.nan  # measured (pipeline.explorer.rates), where the page maps it
    rho: float = math.nan  # the closed form's at its setting


@dataclass
class Runs:
    """Runs in the order added, with their kinds' descriptions."""

    steps: dict[str, list[int]] = field(default_factory=dict)  # kind -> the steps every
    # run of it recorded, when they are shared (then not a column)
    runs: list[Run] = field(default_factory=list)

    def add(self, run: Run) -> None:
        rows = len(self.steps[run.kind]) if run.kind in self.steps else len(run.values)
        shape = (rows, len(run.columns))
        if run.values.shape != shape or (run.kind not in self.steps and run.columns[0] != "step"):
            raise ValueError(f"{run.name or run.kind}: a table of {shape} with its steps")
        self.runs.append(run)

    def index(self) -> tuple[dict[str, object], Floats]:
        """(the JSON index, the float block): per run its labels as codes into name lists,
        its table's layout (a list of columns), offset and rows; SCALARS first in the block."""
        names: dict[str, dict[str, int]] = {k: {} for k in ("kind", "scenario", "loss")}
        names |= {k: {} for k in ("optimizer", "clip")}
        lrs: dict[float, int] = {}
        layouts: dict[tuple[str, ...], int] = {}

        def code(what: str, value: str) -> int:
            return names[what].setdefault(value, len(names[what]))

        n = len(self.runs)
        scalars = np.array(
            [[*r.initial, r.rate, r.rho] for r in self.runs], dtype=np.float32
        ).reshape(n, len(SCALARS))
        offset = scalars.size
        columns: dict[str, list[int]] = {k: [] for k in ("offset", "rows", "layout")}
        labels: dict[str, list[object]] = {k: [] for k in ("kind", "scenario", "loss")}
        labels |= {k: [] for k in ("optimizer", "clip", "lr", "seed", "dataset", "surface")}
        labels |= {"name": [], "diverged_step": []}
        for r in self.runs:
            for what in ("kind", "scenario", "loss", "optimizer", "clip"):
                labels[what].append(code(what, getattr(r, what)))
            labels["lr"].append(lrs.setdefault(r.lr, len(lrs)))
            labels["seed"].append(r.seed)
            labels["dataset"].append(r.dataset)
            labels["surface"].append(r.surface)
            labels["name"].append(r.name)
            labels["diverged_step"].append(r.diverged_step)
            columns["layout"].append(layouts.setdefault(r.columns, len(layouts)))
            columns["offset"].append(offset)
            columns["rows"].append(len(r.values))
            offset += r.values.size
        block = np.concatenate(
            [scalars.reshape(-1), *(r.values.T.reshape(-1) for r in self.runs)]
        ).astype(np.float32)
        lists: dict[str, object] = {k: list(v) for k, v in names.items()}
        lists["layout"] = [list(k) for k in layouts]
        lists["lr"] = list(lrs)
        index = {"count": n, "scalars": list(SCALARS), "names": lists, "steps": self.steps}
        index |= labels
        index |= columns
        return index, block


def shuffled(values: Floats) -> bytes:
    """The float32 values' bytes, byte 0 of every value first, then byte 1, ... (little
    endian: the low mantissa bytes first, sign and exponent last)."""
    raw = np.ascontiguousarray(values, dtype="<f4").view(np.uint8).reshape(-1, 4)
    return raw.T.tobytes()


def unshuffled(data: bytes) -> Floats:
    """The inverse of shuffled."""
    raw = np.frombuffer(data, dtype=np.uint8).reshape(4, -1)
    return np.ascontiguousarray(raw.T).view("<f4").reshape(-1)


def packed(data: bytes) -> str:
    """gzip (no timestamp: the same bytes give the same page) in base64."""
    # level 6: 0.6% larger than 9 here, a quarter of its time
    return base64.b64encode(gzip.compress(data, compresslevel=6, mtime=0)).decode("ascii")


def unpacked(text: str) -> bytes:
    return gzip.decompress(base64.b64decode(text))


def encode_json(doc: object) -> str:
    """A JSON document packed; NaN and inf refused (they are not JSON)."""
    return packed(json.dumps(doc, allow_nan=False, separators=(",", ":")).encode("utf-8"))
