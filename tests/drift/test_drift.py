"""Drift check: this run's per-cell results against the baseline committed in git."""

import copy
import json
import math
import os
import shlex
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from pipeline import params
from pipeline.drift import changes, check
from pipeline.drift import report as drift_report
from pipeline.stages import drift as stage
from pipeline.stages import generate, train
from tests.conftest import ROOT, missing, small_grid, write_params
from tools import deps

CELL = {  # one cell's measures, as train writes them to reports/cells.csv
    "clip_fraction": 0.006,
    "dist_to_optimum": 3.7118013551662443e-07,
    "diverged": 0,
    "diverged_reason": None,
    "diverged_step": None,
    "final_bias": 3.7118013551662443e-07,
    "final_loss": 1.1368683772161603e-13,
    "final_weight": 1.999999761581421,
    "init_bias": 0.8300079107284546,
    "init_weight": 0.7645385265350342,
    "max_grad_norm": 1.9721713054861927,
    "steps_run": 500,
}
ENV = {"python": "3.11.7", "torch": "2.13.0+cpu", "threads": 1, "cpu_capability": "avx2"}
RAN_ON = {"cpu": "Example CPU", "cpu_flags": "avx2 fma", "cores": "2", "host": "h", "os": "Linux"}


@pytest.fixture
def baseline() -> check.Metrics:
    return {
        "mse-adam-norm": dict(CELL),
        "l1-sgd-none": dict(CELL, final_loss=0.10757919400930405, clip_fraction=0.0),
    }


def perturbed(
    metrics: check.Metrics, cell: str, metric: str, value: drift_report.Value
) -> check.Metrics:
    current = copy.deepcopy(metrics)
    current[cell][metric] = value
    return current


def limit(tolerances: params.DriftParams, metric: str, old: float) -> float:
    tol = tolerances.metrics.get(metric, tolerances.default)
    return tol.abs + tol.rel * abs(old)


# --- compare: the five cases, and what counts as drift --------------------------------------
def test_identical_metrics_pass(baseline: check.Metrics, committed: params.Params) -> None:
    """Bitwise equal metrics are reported identical and pass."""
    report = check.compare(baseline, copy.deepcopy(baseline), committed.drift)
    assert (report.status, report.ok, report.changes) == ("identical", True, [])
    text = drift_report.as_text(report, "HEAD", RAN_ON)
    assert "Every value bitwise identical: the check passes" in text


def test_perturbation_above_tolerance_fails_naming_cell_metric_and_values(
    baseline: check.Metrics, committed: params.Params
) -> None:
    """A change of 10x the allowed difference drifts; the report names cell, metric, old, new."""
    old = CELL["final_weight"]
    new = old + 10 * limit(committed.drift, "final_weight", old)
    report = check.compare(
        baseline, perturbed(baseline, "mse-adam-norm", "final_weight", new), committed.drift
    )
    assert (report.status, report.ok) == ("drifted", False)
    (change,) = report.drifted
    assert (change.cell, change.metric, change.old, change.new) == (
        "mse-adam-norm",
        "final_weight",
        old,
        new,
    )
    assert change.diff == pytest.approx(new - old, rel=1e-12)
    for text in (
        drift_report.as_markdown(report, "HEAD", RAN_ON),
        drift_report.as_text(report, "HEAD", RAN_ON),
    ):
        assert "mse-adam-norm" in text and "final_weight" in text
        assert json.dumps(old) in text and json.dumps(new) in text
        assert f"{new - old:+.3g}" in text and "the check fails" in text


def test_perturbation_below_tolerance_passes_within_tolerance(
    baseline: check.Metrics, committed: params.Params
) -> None:
    """A change of a tenth of the allowed difference passes, listed as within tolerance."""
    old = CELL["final_weight"]
    new = old + 0.1 * limit(committed.drift, "final_weight", old)
    report = check.compare(
        baseline, perturbed(baseline, "l1-sgd-none", "final_weight", new), committed.drift
    )
    assert (report.status, report.ok, report.drifted) == ("within tolerance", True, [])
    assert [(c.cell, c.metric) for c in report.within] == [("l1-sgd-none", "final_weight")]
    text = drift_report.as_markdown(report, "HEAD", RAN_ON)
    assert "### Within tolerance (1 value not bitwise identical)" in text


def test_missing_cell_fails_and_so_does_a_new_one(
    baseline: check.Metrics, committed: params.Params
) -> None:
    """A cell of the baseline absent now fails the check; so does a cell the baseline lacks."""
    current = copy.deepcopy(baseline)
    del current["l1-sgd-none"]
    current["huber-sgd-none"] = dict(CELL)
    report = check.compare(baseline, current, committed.drift)
    assert (report.ok, report.missing, report.new) == (False, ["l1-sgd-none"], ["huber-sgd-none"])
    assert report.compared == 1 and report.changes == []
    text = drift_report.as_markdown(report, "HEAD", RAN_ON)
    assert "| l1-sgd-none | baseline only |" in text
    assert "| huber-sgd-none | this run only |" in text
    assert "1 row missing; 1 new row: the check fails" in text


def test_null_text_and_absent_metric_changes_are_drift(
    baseline: check.Metrics, committed: params.Params
) -> None:
    """number -> null, null -> text and a metric gone are drift, whatever the tolerance."""
    current = perturbed(baseline, "l1-sgd-none", "final_loss", None)
    current["l1-sgd-none"]["diverged_reason"] = "loss"
    del current["mse-adam-norm"]["max_grad_norm"]
    report = check.compare(baseline, current, committed.drift)
    rows = {(c.cell, c.metric): drift_report._row(c)[2:] for c in report.drifted}
    assert rows == {
        ("l1-sgd-none", "diverged_reason"): ("null", '"loss"', "not comparable", "-"),
        ("l1-sgd-none", "final_loss"): ("0.10757919400930405", "null", "not comparable", "-"),
        ("mse-adam-norm", "max_grad_norm"): ("1.9721713054861927", "absent", "not comparable", "-"),
    }


def test_per_metric_tolerance_overrides_the_default(
    baseline: check.Metrics, committed: params.Params
) -> None:
    """clip_fraction's zero tolerance fails a 1e-12 change that final_loss's default allows."""
    assert committed.drift.metrics["clip_fraction"] == params.Tolerance(abs=0.0, rel=0.0)
    current = perturbed(baseline, "mse-adam-norm", "clip_fraction", CELL["clip_fraction"] + 1e-12)
    current["mse-adam-norm"]["final_loss"] = CELL["final_loss"] + 1e-12
    report = check.compare(baseline, current, committed.drift)
    assert [c.metric for c in report.drifted] == ["clip_fraction"]
    assert [c.metric for c in report.within] == ["final_loss"]


def test_identical_means_bitwise(baseline: check.Metrics, committed: params.Params) -> None:
    """-0.0 for 0.0 or 500.0 for 500 is within tolerance but not identical; NaN always drifts."""
    current = perturbed(baseline, "l1-sgd-none", "clip_fraction", -0.0)
    current["l1-sgd-none"]["steps_run"] = 500.0
    report = check.compare(baseline, current, committed.drift)
    assert report.status == "within tolerance" and len(report.within) == 2
    nan = perturbed(baseline, "l1-sgd-none", "final_loss", math.nan)
    assert check.compare(baseline, nan, committed.drift).status == "drifted"
    assert check.compare(nan, copy.deepcopy(nan), committed.drift).status == "identical"


def test_changed_environment_is_reported_but_does_not_fail(
    baseline: check.Metrics, committed: params.Params
) -> None:
    """A new torch and another kernel set are listed with both values; alone they pass."""
    env = changes.values_diff(ENV, dict(ENV, torch="2.14.0", cpu_capability="default", os="linux"))
    assert env == [
        ("cpu_capability", "avx2", "default"),
        ("os", drift_report.ABSENT, "linux"),
        ("torch", "2.13.0+cpu", "2.14.0"),
    ]
    report = replace(check.compare(baseline, copy.deepcopy(baseline), committed.drift), env=env)
    assert report.ok and report.status == "identical"
    text = drift_report.as_markdown(report, "HEAD", RAN_ON)
    assert '| environment | torch | "2.13.0+cpu" | "2.14.0" |' in text
    assert '| environment | os | absent | "linux" |' in text
    assert "by itself a change here does not fail the check" in text
    assert "Example CPU (avx2 fma), 2 cores, host h" in text  # the machine: reported, not tracked


# --- main: a baseline committed in a temporary git repository --------------------------------
def git(root: Path, *args: str) -> None:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "PATH": os.environ["PATH"],
    }
    subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, raw_params: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory: a git repo whose HEAD holds params.yaml and reports/ (baseline)."""
    root = tmp_path / "repo"
    (root / "reports").mkdir(parents=True)
    write_params(root / "params.yaml", raw_params)
    cells = {"mse-adam-norm": CELL, "l1-sgd-none": dict(CELL, clip_fraction=0.0)}
    write_cells(root / "reports/cells.csv", cells)
    (root / "reports/env.json").write_text(json.dumps(ENV, indent=2))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "baseline")
    monkeypatch.chdir(root)
    for var in ("GITHUB_STEP_SUMMARY", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)  # e.g. set when pytest runs in a git hook
    return root


def write_cells(path: Path, cells: dict[str, dict[str, object]]) -> None:
    """A per-cell table as train writes it: a `cell` column, then the measures."""
    frame = pd.DataFrame([{"cell": name, **m} for name, m in cells.items()])
    path.write_text(frame.astype({"diverged_step": "Int64"}).to_csv(index=False))


def write_table(path: Path, rows: dict[str, dict[str, object]]) -> None:
    """A study table as analysis writes it: a `config` column first, then the measures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"config": name, **m} for name, m in rows.items()]).to_csv(path, index=False)


def edit(path: Path, **changes: object) -> None:
    """Change top-level keys of a JSON file, or `cell={metric: value}` rows of a CSV, in place."""
    if path.suffix == ".csv":
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
        rows = rows.set_index(rows.columns[0])
        for cell, values in changes.items():
            for metric, value in values.items():  # type: ignore[attr-defined]
                rows.loc[cell, metric] = json.dumps(value) if not isinstance(value, str) else value
        path.write_text(rows.reset_index().to_csv(index=False))
        return
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def exit_code(argv: list[str]) -> int:
    try:
        stage.main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_main_passes_on_an_unchanged_working_tree(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0 and 'identical' when the working tree holds the committed results."""
    assert exit_code([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Drift check: identical. 2 rows of cells compared with HEAD: ")
    assert "nothing  params.yaml, code and environment as in the baseline" in out


def test_main_fails_on_drift_and_writes_markdown_and_step_summary(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 on drift; the Markdown goes to --markdown and is appended to the job summary."""
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    edit(repo / "reports/cells.csv", **{"mse-adam-norm": {"final_loss": 0.5}})
    assert exit_code(["--markdown", str(tmp_path / "drift.md")]) == stage.EXIT_DRIFT
    report = (tmp_path / "drift.md").read_text()
    assert (
        report.startswith("## Drift check: drifted") and "| mse-adam-norm | final_loss |" in report
    )
    assert summary.read_text() == "earlier step\n" + report
    assert "mse-adam-norm  final_loss" in capsys.readouterr().out


def test_main_reports_a_changed_environment_and_passes(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new torch version is printed with both values; the check still passes."""
    edit(repo / "reports/env.json", torch="2.14.0")
    assert exit_code([]) == 0
    out = capsys.readouterr().out
    assert ["environment", "torch", '"2.13.0+cpu"', '"2.14.0"'] in [
        r.split() for r in out.splitlines()
    ]
    assert "does not fail the check" in out


def test_main_compares_with_an_older_revision(repo: Path) -> None:
    """--baseline-rev picks the commit holding the baseline."""
    edit(repo / "reports/cells.csv", **{"l1-sgd-none": {"steps_run": 499}})
    git(repo, "commit", "-qam", "new metrics")
    assert exit_code([]) == 0
    assert exit_code(["--baseline-rev", "HEAD~1"]) == stage.EXIT_DRIFT


def test_main_says_first_what_changed_in_params_code_and_environment(
    repo: Path, raw_params: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before any number: the params.yaml keys, the code files and the environment fields
    that differ from the baseline's, each with both values."""
    data = copy.deepcopy(raw_params)
    data["train"]["steps"] = 1000
    write_params(repo / "params.yaml", data)
    (repo / "pipeline").mkdir()
    (repo / "pipeline/new_rule.py").write_text("# an uncommitted change of the code\n")
    edit(repo / "reports/env.json", torch="2.14.0")
    edit(repo / "reports/cells.csv", **{"mse-adam-norm": {"final_loss": 0.5}})

    assert exit_code([]) == stage.EXIT_DRIFT

    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert ["params.yaml", "train.steps", "500", "1000"] in rows
    assert ["code", "pipeline/new_rule.py", "-", "changed"] in rows
    assert ["environment", "torch", '"2.13.0+cpu"', '"2.14.0"'] in rows
    assert out.index("Changed since HEAD.") < out.index("Drifted, by table and measure.")


def test_a_flood_of_drift_is_summarised_by_table_and_measure_within_a_screen(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """600 drifted values: the terminal gets their count per table and measure and the
    first few values, under 60 lines; --full gets every one."""
    cells = {f"cell{i:03}": dict(CELL) for i in range(300)}
    write_cells(repo / "reports/cells.csv", cells)
    git(repo, "commit", "-qam", "300 cells")
    moved = {n: dict(c, final_loss=0.25, final_weight=1.5) for n, c in cells.items()}
    write_cells(repo / "reports/cells.csv", moved)

    assert exit_code(["--full", str(tmp_path / "drift.txt")]) == stage.EXIT_DRIFT

    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert len(rows) < 60, out
    assert "600 values drifted in 300 rows: the check fails." in out
    assert {("cells", "final_loss", "300"), ("cells", "final_weight", "300")} <= {
        tuple(r[:3]) for r in rows
    }
    assert (
        f"The first {drift_report.SCREEN} of 600; all of them in {tmp_path / 'drift.txt'}." in out
    )
    full = (tmp_path / "drift.txt").read_text()
    assert all(f"cell{i:03}  final_loss" in full for i in range(300))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown revision", "error: no baseline reports/cells.csv at nope: fatal: "),
        ("not committed", "error: no baseline reports/cells.csv at HEAD: fatal: "),
        ("no current table", "error: reports/cells.csv: not found (rebuild the study"),
        ("not a table", "error: reports/cells.csv: no column 'cell', 'config', 'column', "),
        ("bad params", "error: params.yaml: drift.default.abs = -1.0: "),
        ("unknown metric", "error: params: drift.metrics.clip_fractoin: no such metric; known: "),
    ],
)
def test_main_exits_2_with_one_error_line_on_bad_input(
    repo: Path, raw_params: dict, case: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unreadable baseline or current files and bad params: exit 2, one line, no traceback."""
    argv = ["--baseline-rev", "nope"] if case == "unknown revision" else []
    if case == "not committed":
        git(repo, "rm", "-q", "--cached", "reports/cells.csv")
        git(repo, "commit", "-qm", "untrack")
    if case == "no current table":
        (repo / "reports/cells.csv").unlink()
    if case == "not a table":
        (repo / "reports/cells.csv").write_text("{")
    if case in ("bad params", "unknown metric"):
        data = copy.deepcopy(raw_params)
        data["drift"]["default"]["abs"] = -1.0 if case == "bad params" else 0.0
        data["drift"]["metrics"]["clip_fractoin"] = {"abs": 0.0, "rel": 0.0}
        write_params(repo / "params.yaml", data)
    assert exit_code(argv) == params.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(message) and "Traceback" not in err, err


# --- the command the workflow runs -----------------------------------------------------------
def test_make_drift_covers_every_table_the_study_reports(repo: Path) -> None:
    """`make drift` (the workflow's drift step) calls this main with the grid's cells and
    every per-row CSV table the study and its analysis write (dvc.yaml), the parquet
    tables' summary among them: a changed classification row or parquet column is drift
    (classes.csv and the parquet tables were not compared: a NaN there read "identical")."""
    if shutil.which("make") is None:
        missing("make is not installed")
    dry = subprocess.run(
        ["make", "-n", "-s", "-C", str(ROOT), "drift"], capture_output=True, text=True, check=True
    )
    command = dry.stdout.replace("\\\n", " ")
    (line,) = [ln for ln in command.splitlines() if "-m pipeline drift" in ln]
    argv = shlex.split(line.split("-m pipeline drift", 1)[1])
    stages = deps.stages(ROOT)
    cells_out = next(iter(stages["train"]["plots"][0]))  # a plot: keeps DVC's run cache on
    outs = [o for s in ("study", "analysis") for o in stages[s]["outs"] if isinstance(o, dict)]
    study_tables = [next(iter(o)) for o in outs if next(iter(o)).endswith(".csv")]
    env_out = next(iter(stages["env"]["outs"][0]))
    assert argv[:7] == [
        "--params",
        "params.yaml",
        "--env",
        env_out,
        "--full",
        "reports/drift.txt",
        "--tables",
    ]
    assert argv[7] == cells_out and sorted(argv[8:]) == sorted(study_tables)
    assert {"reports/study/classes.csv", "reports/study/tables.csv"} <= set(argv[8:])
    for table in argv[8:]:
        write_table(repo / table, {"classes-ce-adam-none": {"iqm_steps": 4.0, "agrees": "True"}})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "study tables")
    assert exit_code(argv) == 0
    for table in ("reports/study/classes.csv", "reports/study/tables.csv"):
        edit(repo / table, **{"classes-ce-adam-none": {"iqm_steps": 5.0}})
        assert exit_code(argv) == stage.EXIT_DRIFT, table
        git(repo, "checkout", "--", table)


def test_tables_keyed_by_labels_are_compared_row_by_row() -> None:
    """A table without a name column (improvement.csv: clip, optimizer, versus) keys its
    rows by its leading labels, so a changed probability names its row."""
    text = "clip,optimizer,versus,probability\nnorm,adam,sgd,0.5\nnone,adam,sgd,0.25\n"

    rows = check.read_table(text, "improvement.csv")

    assert rows == {"norm/adam/sgd": {"probability": 0.5}, "none/adam/sgd": {"probability": 0.25}}


def test_real_training_rerun_is_identical(repo: Path, raw_params: dict) -> None:
    """Training a small grid twice gives results the check calls bitwise identical."""
    write_params(repo / "params.yaml", small_grid(raw_params))
    args = ["--data", "data/points.csv", "--traces", "traces", "--cells", "reports/cells.csv"]
    args += ["--metrics", "reports/metrics.json"]
    generate.main(["--out", "data/points.csv"])
    train.main(args)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "trained")
    train.main(args)
    report = check.load(
        [Path("reports/cells.csv")],
        Path("reports/env.json"),
        "HEAD",
        params.load(Path("params.yaml")).drift,
    )
    assert (report.status, report.compared) == ("identical", 8)
