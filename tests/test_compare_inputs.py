"""The compare stage's inputs: every missing or malformed one is an InputError that names it."""

import re
from pathlib import Path

import pytest

from pipeline import grid, params
from pipeline.compare_inputs import InputError, check, read_env, read_metrics, read_traces

ROOT = Path(__file__).resolve().parents[1]


def two_cells() -> list[grid.Cell]:
    return grid.cells(params.load(ROOT / "params.yaml").train)[:2]


def test_check_names_every_cell_missing_a_trace_or_a_metrics_entry() -> None:
    """check lists each cell without a trace and each without a metrics entry, one per line."""
    first, second = two_cells()

    with pytest.raises(InputError) as error:
        check([first, second], traces={first.name: 0}, metrics={second.name: 0})

    assert str(error.value).splitlines() == [
        f"cell {second.name}: no trace",
        f"cell {first.name}: no metrics entry",
    ]


def test_read_traces_names_every_missing_file(tmp_path: Path) -> None:
    """read_traces names each cell whose CSV is missing and the stage that writes it."""
    cells = two_cells()

    with pytest.raises(InputError) as error:
        read_traces(cells, tmp_path)

    lines = str(error.value).splitlines()
    assert len(lines) == 2
    assert all(f"cell {c.name}: no trace" in line for c, line in zip(cells, lines, strict=True))
    assert all(line.endswith("(run `dvc repro train`)") for line in lines)


def test_a_missing_file_names_the_stage_that_writes_it(tmp_path: Path) -> None:
    """A missing metrics file or env.json names `dvc repro train` or `dvc repro env`."""
    with pytest.raises(InputError, match=r"file not found \(run `dvc repro train`\)"):
        read_metrics(tmp_path / "metrics.json")
    with pytest.raises(InputError, match=r"file not found \(run `dvc repro env`\)"):
        read_env(tmp_path / "env.json")


def test_a_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    """A file holding something other than JSON is an InputError naming it."""
    path = tmp_path / "metrics.json"
    path.write_text("{not json", encoding="utf-8")

    with pytest.raises(InputError, match=re.escape("metrics.json: not JSON")):
        read_metrics(path)


@pytest.mark.parametrize("text", ["[1, 2]", '{"mse-sgd-none": 1.0}'])
def test_metrics_must_map_cells_to_mappings(tmp_path: Path, text: str) -> None:
    """read_metrics rejects anything but {cell name: {metric: value}}."""
    path = tmp_path / "metrics.json"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(InputError, match=re.escape("expected {cell name: {metric: value}}")):
        read_metrics(path)


def test_env_must_be_a_mapping(tmp_path: Path) -> None:
    """read_env rejects a document that is not {field: value} and returns one that is."""
    path = tmp_path / "env.json"
    path.write_text('["torch"]', encoding="utf-8")
    with pytest.raises(InputError, match=re.escape("expected {field: value}")):
        read_env(path)

    path.write_text('{"torch": "2.13.0", "threads": 1}', encoding="utf-8")
    assert read_env(path) == {"torch": "2.13.0", "threads": 1}
