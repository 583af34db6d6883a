"""Stage explorer end to end (a small pipeline made by the real stages): the page embeds
every grid cell's trace and every traced study cell exactly, is the same file when made
again, and refuses outputs whose replay does not match what their stage recorded."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.explorer import pack
from pipeline.grid import trace
from tests.helpers.explorer_outputs import EXPLORER, Outputs

pytestmark = pytest.mark.slow


def embedded(page: Path) -> tuple[dict, np.ndarray]:
    """The page's index (JSON) and float block, unpacked as its script unpacks them."""
    text = page.read_text(encoding="utf-8")
    found = {
        name: re.search(
            rf'<script type="application/octet-stream" id="{name}">([^<]*)</script>', text
        )
        for name in ("gradlab-index", "gradlab-values")
    }
    index = json.loads(pack.unpacked(found["gradlab-index"].group(1)))  # type: ignore[union-attr]
    values = pack.unshuffled(pack.unpacked(found["gradlab-values"].group(1)))  # type: ignore[union-attr]
    return index, values


def tables(index: dict, values: np.ndarray, kind: str) -> dict[tuple, dict[str, np.ndarray]]:
    """Each run of `kind` by (loss, optimizer, clip, lr, seed, scenario): its columns."""
    runs, names = index["runs"], index["runs"]["names"]
    found = {}
    for i in range(runs["count"]):
        if names["kind"][runs["kind"][i]] != kind:
            continue
        key = tuple(names[k][runs[k][i]] for k in ("loss", "optimizer", "clip"))
        key += (names["lr"][runs["lr"][i]], runs["seed"][i], names["scenario"][runs["scenario"][i]])
        rows, start = runs["rows"][i], runs["offset"][i]
        layout = names["layout"][runs["layout"][i]]
        found[key] = {
            c: values[start + j * rows : start + (j + 1) * rows] for j, c in enumerate(layout)
        }
    return found


def test_every_grid_cell_is_embedded_in_full(explorer_outputs: Outputs) -> None:
    """Each trained cell's table on the page is its trace file, every step and column."""
    index, values = embedded(explorer_outputs.page)
    manifest = json.loads((explorer_outputs.root / "traces/manifest.json").read_text())

    grid = tables(index, values, "grid")

    assert len(grid) == len(manifest["cells"]) == 18
    for entry in manifest["cells"]:
        cell = entry["cell"]
        key = (cell["loss"], cell["optimizer"], cell["clip"], cell["optimizer_kwargs"]["lr"],
               cell["seed"], "tutorial")  # fmt: skip
        frame = trace.read_frame(explorer_outputs.root / f"traces/{cell['name']}.csv")
        assert list(grid[key]) == list(frame.columns)
        for column in frame.columns:
            np.testing.assert_array_equal(grid[key][column], frame[column].to_numpy(np.float32))


def test_every_traced_study_cell_is_embedded_at_the_pages_steps(explorer_outputs: Outputs) -> None:
    """Each reporting cell's weight and bias on the page are traces.parquet's at the steps
    the page lists, and the page keeps about explorer.points of them."""
    index, values = embedded(explorer_outputs.page)
    traces = pd.read_parquet(explorer_outputs.root / "reports/study/traces.parquet")
    report = traces[traces["part"] == "report"]
    steps = index["runs"]["steps"]["study"]

    study = tables(index, values, "study")

    assert 8 <= len(steps) <= 14 and steps[0] == 0
    assert len(study) == report.groupby(["scenario", "loss", "optimizer", "clip", "seed"]).ngroups
    kept = report[report["step"].isin(steps)]
    for key, rows in kept.groupby(["loss", "optimizer", "clip", "lr", "seed", "scenario"]):
        at = np.searchsorted(steps, rows["step"].to_numpy())
        np.testing.assert_array_equal(study[key]["weight"][at], rows["weight"].to_numpy())
        np.testing.assert_array_equal(study[key]["bias"][at], rows["bias"].to_numpy())


def test_the_page_is_the_same_file_when_made_again(explorer_outputs: Outputs) -> None:
    """No timestamp, path or id in it: the same outputs give the same bytes (DVC's hash)."""
    again = explorer_outputs.root / "reports/again.html"
    args = [*EXPLORER[:-1], str(again)]

    done = explorer_outputs.stage(*args)

    assert done.returncode == 0, done.stderr
    assert again.read_bytes() == explorer_outputs.page.read_bytes()
    assert done.stdout.strip() == f"Explorer: {again.resolve().as_uri()}"


@pytest.mark.parametrize("stale", ["cells", "walkthrough"])
def test_outputs_the_replay_contradicts_are_refused_and_the_page_kept(
    explorer_outputs: Outputs, tmp_path: Path, stale: str
) -> None:
    """A study cell that ended elsewhere than its replay, or a walkthrough whose gradient is
    not the tutorial run's: exit 2, one line naming the file and `dvc repro`, no page."""
    root = tmp_path / "copy"
    shutil.copytree(explorer_outputs.root, root, symlinks=True)
    copy = Outputs(root, root / "reports/explorer.html")
    if stale == "cells":
        path = root / "reports/study/cells.parquet"
        cells = pd.read_parquet(path)
        at = cells.index[(cells["part"] == "tune") & (cells["optimizer"] == "momentum")][0]
        cells.loc[at, "final_weight"] += 0.5
        cells.to_parquet(path)
    else:
        path = root / "reports/walkthrough/walkthrough.json"
        doc = json.loads(path.read_text())
        doc["grad"]["linear.weight"][0] += 1.0
        path.write_text(json.dumps(doc))
    before = copy.page.read_bytes()

    done = copy.stage(*EXPLORER)

    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "dvc repro" in done.stderr
    assert ("cells.parquet" if stale == "cells" else "walkthrough") in done.stderr
    assert copy.page.read_bytes() == before
