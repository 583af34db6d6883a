"""Config tests: the committed params.yaml is valid; every bad value is refused clearly."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline import params
from tests.conftest import ROOT, write_params


def test_committed_params_validate(committed: params.Params) -> None:
    """The committed params.yaml parses into typed, frozen params."""
    assert committed.train.steps >= 500
    assert len(committed.train.grid.losses) >= 4 and len(committed.train.grid.optimizers) >= 6
    with pytest.raises(ValidationError):
        committed.train.steps = 1  # type: ignore[misc]


def set_params(tmp_path: Path, *overrides: str) -> list[str]:
    """The lines of a diff of params.yaml before and after `dvc exp run -S OVERRIDES` edits
    it (DVC's own function for it: dvc.utils.hydra.apply_overrides)."""
    from dvc.utils.hydra import apply_overrides

    edited = tmp_path / "params.yaml"
    edited.write_bytes((ROOT / "params.yaml").read_bytes())
    apply_overrides(edited, list(overrides))
    diff = subprocess.run(
        ["diff", str(ROOT / "params.yaml"), str(edited)], capture_output=True, text=True
    )
    return [line for line in diff.stdout.splitlines() if line.startswith(("<", ">"))]


def test_dvc_exp_run_set_param_rewrites_nothing_it_was_not_asked_to(tmp_path: Path) -> None:
    """params.yaml is written as DVC writes it back (lists one item per line, lines within
    ruamel's 80 columns): setting a key to its value changes no byte, and setting the
    grid's lists changes only their items."""
    assert set_params(tmp_path, "train.steps=500") == []

    diff = set_params(tmp_path, "train.grid.optimizers=[sgd,adam]", "train.grid.clips=[none]")

    removed = ["momentum", "nesterov", "adamw", "nadam", "rmsprop", "adagrad", "norm", "value"]
    assert sorted(diff) == sorted(f"<     - {name}" for name in removed)


def test_scientific_notation_is_a_float_like_dvc(tmp_path: Path, raw_params: dict) -> None:
    """`lr: 1e-3` reads as a number (YAML 1.2, as DVC reads it), not as a string."""
    text = (ROOT / "params.yaml").read_text().replace("sgd: {lr: 0.05", "sgd: {lr: 1e-3")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert params.load(path).train.optimizers.sgd.lr == 0.001


def _set(data: dict, dotted: str, value: object) -> dict:
    """`data` with the value at a dotted key replaced (or deleted); a key of the line
    preset switches generate to it first."""
    data = copy.deepcopy(data)
    if dotted.startswith("generate.") and dotted != "generate.preset":
        data["generate"] = {"preset": "line"}
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()

BAD = [
    # (key, value, words the message must contain)
    (
        "train.grid.losses",
        ["mse", "mae"],
        [
            "train.grid.losses.1",
            "'mae'",
            "'cosh', 'huber', 'l1', 'logcosh', 'mse', 'quartic' or 'smoothl1'",
        ],
    ),
    ("train.grid.optimizers", ["adamx"], ["train.grid.optimizers.0", "'adamx'", "'sgd'"]),
    ("train.grid.clips", ["nrom"], ["train.grid.clips.0", "'nrom'", "'norm'"]),
    ("train.grid.losses", [], ["train.grid.losses", "at least 1"]),
    ("train.stepz", 10, ["train.stepz", "unknown key", "allowed: steps, dtype, grid"]),
    ("train.dtype", "float16", ["train.dtype", "'float16'", "'float32' or 'float64'"]),
    ("generate.preset", "custom", ["generate.preset = 'custom'", "must be one of tutorial, line"]),
    ("train.steps", _DELETE, ["train.steps", "missing"]),
    ("compare", _DELETE, ["compare", "missing"]),
    ("train.steps", "ten", ["train.steps", "'ten'", "valid integer"]),
    ("train.steps", 0, ["train.steps", "= 0", "greater than or equal to 1"]),
    ("train.optimizers.sgd.lr", 0.0, ["train.optimizers.sgd.lr", "= 0.0", "greater than 0"]),
    ("train.optimizers.sgd.lr", -0.1, ["train.optimizers.sgd.lr", "-0.1", "greater than 0"]),
    ("train.optimizers.adam.lr", float("nan"), ["train.optimizers.adam.lr", "nan", "finite"]),
    ("train.optimizers.adam.lr", float("inf"), ["train.optimizers.adam.lr", "inf", "finite"]),
    ("train.optimizers.adam.lr", "0.1", ["train.optimizers.adam.lr", "'0.1'", "valid number"]),
    ("generate.slope", float("-inf"), ["generate.slope", "finite"]),
    ("train.clips.norm.max_norm", 0.0, ["train.clips.norm.max_norm", "greater than 0"]),
    ("train.clips.norm.norm_type", 0.5, ["train.clips.norm.norm_type", "0.5", ">= 1 or 'inf'"]),
    ("train.clips.norm.norm_type", "two", ["train.clips.norm.norm_type", "'two'", ">= 1 or 'inf'"]),
    ("train.clips.value.clip_value", -1.0, ["train.clips.value.clip_value", "greater than 0"]),
    ("generate.n", 1, ["generate.n", "= 1", "greater than or equal to 2"]),
    ("generate.x_max", -2.0, ["generate.x_max", "-2.0", "greater than x_min"]),
    ("generate.noise", -0.5, ["generate.noise", "-0.5", "greater than or equal to 0"]),
    ("env.threads", 0, ["env.threads", "greater than or equal to 1"]),
    ("publish.experiment", "", ["publish.experiment", "''"]),
    ("publish.points", 1, ["publish.points", "greater than or equal to 2"]),
    ("compare.curve_stride", 0, ["compare.curve_stride", "greater than or equal to 1"]),
    ("compare.threshold", -1e-4, ["compare.threshold", "greater than 0"]),
    ("compare.tie", -1e-6, ["compare.tie", "greater than or equal to 0"]),
    ("scenarios.noisy.slope", 0.0, ["scenarios.noisy", "slope = 0.0", "tol is a share"]),
]


@pytest.mark.parametrize(("key", "value", "words"), BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_value_is_refused_naming_key_value_and_rule(
    raw_params: dict, key: str, value: object, words: list[str]
) -> None:
    """Each bad value gives one line naming the key, the value and what is allowed."""
    with pytest.raises(params.ParamsError) as caught:
        params.parse(_set(raw_params, key, value))
    (line,) = caught.value.problems
    for word in words:
        assert word in line, line


def test_all_problems_are_reported_at_once(raw_params: dict) -> None:
    """Three independent mistakes give three lines, not just the first."""
    data = _set(raw_params, "train.steps", 0)
    data = _set(data, "train.grid.losses", ["mae"])
    data = _set(data, "publish.points", _DELETE)
    with pytest.raises(params.ParamsError) as caught:
        params.parse(data)
    assert len(caught.value.problems) == 3


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """A YAML syntax error is reported with its line number."""
    path = tmp_path / "params.yaml"
    path.write_text("env:\n  threads: 1\n  deterministic: [true\n")
    with pytest.raises(params.ParamsError) as caught:
        params.load(path)
    assert caught.value.problems[0].startswith(f"{path}:4: YAML syntax error")


def test_a_key_that_would_do_nothing_is_refused(raw_params: dict) -> None:
    """`generate.noise` under preset: tutorial (whose points are fixed) is refused in one
    line naming the preset and the keys it takes, not silently ignored."""
    data = _set(raw_params, "generate.preset", "tutorial")
    data["generate"]["noise"] = 0.5

    with pytest.raises(params.ParamsError) as caught:
        params.parse(data)

    (line,) = caught.value.problems
    assert line.endswith(
        "generate.noise = 0.5: unknown key under preset: tutorial; allowed: preset"
    )


def test_line_preset_takes_one_key_and_defaults_the_rest(raw_params: dict) -> None:
    """preset: line with only `noise` set is valid: the other keys take their defaults."""
    data = _set(raw_params, "generate.preset", "line")
    data["generate"]["noise"] = 0.5

    got = params.parse(data).generate

    assert isinstance(got, params.LineData) and (got.noise, got.n, got.slope) == (0.5, 20, 2.0)


def test_an_edited_params_file_gets_a_note_on_restoring_it(
    tmp_path: Path, raw_params: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused params that differ from the last commit (as a failed `dvc exp run -S` leaves
    them) end with a note naming `git checkout HEAD -- params.yaml`, which also restores
    edits `dvc exp run` staged; committed ones do not."""
    path = write_params(tmp_path / "params.yaml", _set(raw_params, "train.steps", 0))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bad but committed"]):
        subprocess.run([*git, *cmd], cwd=tmp_path, check=True)
    with pytest.raises(SystemExit):
        params.load_or_exit(path)
    committed_err = capsys.readouterr().err
    write_params(path, _set(raw_params, "train.steps", -1))

    with pytest.raises(SystemExit) as exit_:
        params.load_or_exit(path)

    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and "note:" not in committed_err
    assert err[0].startswith("error: ") and "train.steps = -1" in err[0]
    assert err[1].startswith("note: ") and "`git checkout HEAD -- params.yaml`" in err[1]


@pytest.mark.parametrize("stage", ["env", "generate"])
def test_stage_exits_2_with_one_line_per_problem_and_writes_nothing(
    tmp_path: Path, raw_params: dict, stage: str
) -> None:
    """A stage given bad params exits 2, prints one line per problem, no traceback, no file."""
    bad = write_params(
        tmp_path / "params.yaml", _set(_set(raw_params, "train.steps", 0), "generate.noise", -1.0)
    )
    out = tmp_path / "out" / "file"
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", stage, "--params", str(bad), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines), run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


def _bomb(levels: int) -> str:
    """YAML whose last alias expands to 9**levels leaves (the "billion laughs" shape)."""
    lines = ["lol:", "  a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_yaml_bomb_is_refused_in_one_short_line(tmp_path: Path) -> None:
    """params.yaml with a 9^7-leaf alias bomb: the check prints one line of a few hundred
    characters naming the file and the cause, exit 2 (it printed 17 MB as one "line")."""
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text() + _bomb(7))

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "env",
            "--params",
            str(path),
            "--out",
            str(tmp_path / "x.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    (line,) = run.stderr.splitlines()
    assert run.returncode == 2 and len(line) < 400, line[:400]
    assert str(path) in line and "aliases" in line and "YAML bomb" in line


def test_values_in_messages_are_cut_to_a_readable_length(raw_params: dict) -> None:
    """A 100,000-character name shows its start and end in a short line; a 50,000-item
    list of bad seeds gives 20 lines, then one counting the rest."""
    with pytest.raises(params.ParamsError) as long_name:
        params.parse(_set(raw_params, "publish.experiment", "x" * 100_000 + "!"))
    with pytest.raises(params.ParamsError) as many:
        params.parse(_set(raw_params, "study.seeds.tune", ["bad"] * 50_000))

    (name,) = long_name.value.problems
    assert len(name) < 300 and "publish.experiment = 'xxxx" in name and "x!'" in name
    problems = many.value.problems
    assert len(problems) == 21 and problems[-1].endswith("and 49,980 more problems")
    assert all(len(line) < 300 for line in problems)
