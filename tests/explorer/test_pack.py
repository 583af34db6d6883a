"""How the page embeds its runs (pipeline.explorer.pack): the index and float block give
back every run's table exactly, and the same runs give the same bytes."""

import json
import math

import numpy as np
import pytest

from pipeline.explorer import pack


def run(kind: str, seed: int, values: list[list[float]], columns: tuple[str, ...]) -> pack.Run:
    return pack.Run(
        kind=kind, scenario="tutorial", loss="mse", optimizer="adam", clip="norm", lr=0.05,
        seed=seed, dataset=0, surface=0, initial=(0.5, -0.25), columns=columns,
        values=np.array(values, dtype=np.float32), rate=0.9 if kind == "replay" else math.nan,
    )  # fmt: skip


def table(index: dict, block: np.ndarray, i: int) -> dict[str, list[float]]:
    """Run i's columns read back as the page's script reads them."""
    layout = index["names"]["layout"][index["layout"][i]]
    rows, start = index["rows"][i], index["offset"][i]
    return {
        c: block[start + j * rows : start + (j + 1) * rows].tolist() for j, c in enumerate(layout)
    }


def test_every_table_comes_back_exactly_with_its_labels_and_scalars() -> None:
    """Two kinds, one with shared steps: tables, steps, labels and scalars read back."""
    runs = pack.Runs(steps={"replay": [0, 4, 9]})
    runs.add(run("grid", 42, [[0, 1.5, -2.25], [1, 1.0 / 3, float("nan")]], ("step", "loss", "x")))
    runs.add(run("replay", 3, [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], ("weight", "bias")))

    index, block = runs.index()
    back = pack.unshuffled(pack.unpacked(pack.packed(pack.shuffled(block))))
    doc = json.loads(pack.unpacked(pack.encode_json(index)))

    assert back.tobytes() == block.tobytes()
    assert table(doc, back, 0)["loss"] == [1.5, np.float32(1.0 / 3)]
    assert math.isnan(table(doc, back, 0)["x"][1])
    assert table(doc, back, 1)["bias"] == pytest.approx([0.2, 0.4, 0.6], rel=1e-7)
    assert doc["steps"] == {"replay": [0, 4, 9]} and doc["seed"] == [42, 3]
    assert [doc["names"]["kind"][k] for k in doc["kind"]] == ["grid", "replay"]
    assert back[4:8].tolist() == pytest.approx([0.5, -0.25, 0.9, math.nan], nan_ok=True)


def test_a_table_without_its_steps_is_refused() -> None:
    """A run with neither a step column nor its kind's shared steps cannot be placed."""
    with pytest.raises(ValueError, match="with its steps"):
        pack.Runs().add(run("study", 1, [[0.1, 0.2]], ("weight", "bias")))


def test_the_same_runs_pack_to_the_same_bytes() -> None:
    """No timestamp in the gzip header: a rebuilt page is the same file."""
    values = np.linspace(0, 1, 1000, dtype=np.float32)

    assert pack.packed(pack.shuffled(values)) == pack.packed(pack.shuffled(values.copy()))
