"""Reading what earlier stages wrote: every missing or malformed input is named, with the
stage that writes it."""

import re
from pathlib import Path

import pytest

from pipeline.files import inputs
from pipeline.files.inputs import InputError


def test_read_traces_names_every_missing_file(tmp_path: Path) -> None:
    """read_traces names each cell whose CSV is missing and the stage that writes it."""
    names = ["mse-sgd-none", "l1-adam-norm"]

    with pytest.raises(InputError) as error:
        inputs.read_traces(tmp_path, names)

    lines = str(error.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [f"cell {n}" for n in names]
    assert all(line.endswith("(run `dvc repro train`)") for line in lines)


def test_a_missing_file_names_the_stage_that_writes_it(tmp_path: Path) -> None:
    """A missing JSON file names `dvc repro <stage>`."""
    with pytest.raises(InputError, match=r"file not found \(run `dvc repro env`\)"):
        inputs.read_env(tmp_path / "env.json")


def test_a_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    """A file holding something other than JSON is an InputError naming it."""
    path = tmp_path / "env.json"
    path.write_text("{not json", encoding="utf-8")

    with pytest.raises(InputError, match=re.escape("env.json: not JSON")):
        inputs.read_env(path)


def test_env_must_be_a_mapping(tmp_path: Path) -> None:
    """read_env rejects a document that is not {field: value} and returns one that is."""
    path = tmp_path / "env.json"
    path.write_text('["torch"]', encoding="utf-8")
    with pytest.raises(InputError, match=re.escape("expected {field: value}")):
        inputs.read_env(path)

    path.write_text('{"torch": "2.13.0", "threads": 1}', encoding="utf-8")
    assert inputs.read_env(path) == {"torch": "2.13.0", "threads": 1}


def test_or_exit_prints_each_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An InputError inside or_exit becomes one `error:` line per problem and exit code 2."""
    with pytest.raises(SystemExit) as exit_, inputs.or_exit():
        raise InputError("first problem\nsecond problem")

    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines() == ["error: first problem", "error: second problem"]


@pytest.mark.parametrize(("name", "data"), [("cells.parquet", b"PAR1" + b"\0" * 100),
                                            ("tuned.csv", b'a,b\n"1,2\n')])  # fmt: skip
def test_an_unreadable_table_is_named_in_one_line_with_the_fix(
    tmp_path: Path, name: str, data: bytes
) -> None:
    """A parquet file without its footer (truncated) or a broken CSV: InputError naming the
    file, the format's complaint and `make heal` (it was an ArrowInvalid traceback)."""
    path = tmp_path / name
    path.write_bytes(data)

    with pytest.raises(InputError) as caught:
        inputs.read_table(path, "study")

    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{path}: not a readable {path.suffix[1:]} table (")
    assert line.endswith("`make heal` restores or rebuilds it (stage study)") and len(line) < 400
