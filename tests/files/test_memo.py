"""A memo answers only for the bytes it was made from; the env stage's memo of a valid
params.yaml never lets a bad one through, and spares pydantic when it answers."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.files import memo
from tests.conftest import ROOT


def _counted(calls: list[int], value: dict) -> dict:
    calls.append(1)
    return value


def test_a_memo_answers_until_a_byte_or_a_name_of_its_inputs_changes(tmp_path: Path) -> None:
    """Computed once, then recalled; computed again when an input's bytes change, when an
    input is added, or when the memo is damaged."""
    a, b, kept = tmp_path / "a.yaml", tmp_path / "b.py", tmp_path / "tmp" / "memo.json"
    a.write_text("x: 1\n")
    b.write_text("pass\n")
    calls: list[int] = []

    def compute() -> dict:
        return _counted(calls, {"threads": len(calls) + 1})

    first = memo.recalled(kept, [a, b], compute)
    again = memo.recalled(kept, [a, b], compute)
    a.write_text("x: 2\n")
    edited = memo.recalled(kept, [a, b], compute)
    (tmp_path / "c.py").write_text("")
    added = memo.recalled(kept, [a, b, tmp_path / "c.py"], compute)
    kept.write_text("{not json")
    damaged = memo.recalled(kept, [a, b, tmp_path / "c.py"], compute)

    assert (first, again, edited, added, damaged) == (
        {"threads": 1}, {"threads": 1}, {"threads": 2}, {"threads": 3}, {"threads": 4},
    )  # fmt: skip
    assert json.loads(kept.read_text())["value"] == {"threads": 4}


def test_nothing_is_kept_when_the_computation_exits(tmp_path: Path) -> None:
    """compute() exiting (bad params) leaves no memo, so the next run checks again."""
    a, kept = tmp_path / "params.yaml", tmp_path / "memo.json"
    a.write_text("x: 1\n")

    def refuse() -> dict:
        raise SystemExit(2)

    with pytest.raises(SystemExit):
        memo.recalled(kept, [a], refuse)

    assert not kept.exists()


def _env(params: Path, kept: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """The env stage in its own interpreter; prints whether pydantic was imported."""
    code = (
        "import sys; from pipeline.stages import env; "
        f"env.main(['--params', {str(params)!r}, '--out', {str(out)!r}, '--memo', {str(kept)!r}]); "
        "print('pydantic' in sys.modules)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_env_stage_validates_again_only_when_params_change(tmp_path: Path) -> None:
    """First run: validated (pydantic imported), settings kept. Second: answered by the memo,
    no pydantic, the same env.json. A bad edit: refused with exit 2 and its one line, as if
    there were no memo."""
    params, kept, out = tmp_path / "params.yaml", tmp_path / "memo.json", tmp_path / "env.json"
    params.write_text((ROOT / "params.yaml").read_text())

    first = _env(params, kept, out)
    written = out.read_bytes()
    second = _env(params, kept, out)
    params.write_text(params.read_text().replace("threads: 1", "threads: 0", 1))
    bad = _env(params, kept, out)

    assert (first.returncode, first.stdout.split()) == (0, ["True"]), first.stderr
    assert (second.returncode, second.stdout.split()) == (0, ["False"]), second.stderr
    assert out.read_bytes() == written
    assert bad.returncode == 2 and "env.threads = 0" in bad.stderr, bad.stderr
