"""The tutorial's step replayed: its numbers, its closed form, and the stage's outputs."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from ruamel.yaml import YAML

from pipeline import params
from pipeline.stages import walkthrough
from tests.conftest import ROOT

PARAMS = ROOT / "params.yaml"
MAX_DIFF = 1e-6  # float32 autograd against float64 closed form, values up to ~10
FILES = {"walkthrough.json", "walkthrough.md", "graph.dot"}


@pytest.fixture(autouse=True)
def _restore_torch_settings() -> Iterator[None]:
    """main() pins threads and deterministic kernels; give other tests theirs back."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def run(out: Path, params_path: Path = PARAMS) -> dict[str, bytes]:
    """Run the stage into `out`; every file it wrote, by name."""
    walkthrough.main(["--params", str(params_path), "--out", str(out)])
    return {f.name: f.read_bytes() for f in sorted(out.iterdir())}


def test_main_writes_the_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """main writes the JSON, the Markdown and the DOT graph, and says where."""
    out = tmp_path / "walkthrough"

    files = run(out)

    assert set(files) >= FILES
    report = json.loads(files["walkthrough.json"])
    assert report["inputs"] == [1.0, 2.0, 3.0]
    assert report["max_abs_diff"] < MAX_DIFF
    assert set(report["losses"]) == {"mse", "l1", "smoothl1", "huber", "logcosh"}
    assert "# Walkthrough" in files["walkthrough.md"].decode()
    assert str(out) in capsys.readouterr().out


def test_main_twice_gives_identical_bytes(tmp_path: Path) -> None:
    """Two runs write byte-identical files, graph included."""
    first = run(tmp_path / "a")
    second = run(tmp_path / "b")

    assert first == second


def test_outputs_do_not_depend_on_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With or without Graphviz on PATH the stage writes the same files, byte for byte: a
    tracked output set never depends on an optional system package (publish draws the SVG)."""
    with_path = run(tmp_path / "a")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    without = run(tmp_path / "b")

    assert set(without) == FILES and with_path == without


def test_bad_params_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad value in params.yaml stops main with exit code 2 before anything is written."""
    yaml = YAML()
    data = yaml.load(PARAMS.read_text(encoding="utf-8"))
    data["walkthrough"]["lr"] = -0.01
    bad = tmp_path / "params.yaml"
    with bad.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)
    out = tmp_path / "walkthrough"

    with pytest.raises(SystemExit) as exit_info:
        walkthrough.main(["--params", str(bad), "--out", str(out)])

    assert exit_info.value.code == params.EXIT_BAD_INPUT == 2
    assert "walkthrough.lr" in capsys.readouterr().err
    assert not out.exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["params.yaml"]
