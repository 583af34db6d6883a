"""The README's make targets as a new user runs them, in a copy of the project: what they
print (DVC's errors, the install, nothing on a no-op) and what they bring back."""

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT, sandbox_env, small_grid, write_params
from tests.helpers.make import make, make_project
from tests.helpers.servers import free_port, stop_group, wait_healthy

pytestmark = pytest.mark.slow


def runs(root: Path, experiment: str) -> list:
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id], max_results=1000)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, raw_params: dict) -> tuple[Path, str]:
    """A copy of the project with the small grid after its first `make repro`, and what
    that printed (stdout, then stderr)."""
    root = make_project(tmp_path_factory.mktemp("made") / "project")
    write_params(root / "params.yaml", small_grid(raw_params))
    first = make(root, "repro")
    assert first.returncode == 0, first.stdout + first.stderr
    return root, first.stdout + first.stderr


def test_a_yaml_syntax_error_shows_dvcs_error_naming_the_line(tmp_path: Path) -> None:
    """`make repro` with a broken params.yaml prints DVC's own error (file, line, column),
    not only make's `Error 255`, and exits non-zero."""
    root = make_project(tmp_path / "project")
    lines = (root / "params.yaml").read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("  steps:"))
    lines[at] = lines[at].rstrip("\n") + " ]]:\n"
    (root / "params.yaml").write_text("".join(lines))

    done = make(root, "repro")

    assert done.returncode != 0
    assert "ERROR: unable to read: 'params.yaml', YAML file structure is corrupted" in done.stderr
    assert f"line {at + 1}" in done.stderr


def test_the_first_make_repro_prints_no_mlflow_log_lines(made: tuple[Path, str]) -> None:
    """Creating the MLflow store logs nothing into the summary (no `INFO mlflow...` lines)."""
    _, said = made
    assert "MLflow (sqlite:///" in said
    assert not [line for line in said.splitlines() if " INFO " in line], said


def test_a_second_make_repro_prints_nothing(made: tuple[Path, str]) -> None:
    """Nothing changed: `make repro` prints nothing at all (no command echo, no DVC notes)."""
    root, _ = made
    again = make(root, "repro")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


def test_deleting_mlflow_db_then_make_repro_brings_every_run_back(made: tuple[Path, str]) -> None:
    """mlflow.db deleted: `make repro` says so and publishes every grid and study run again,
    without retraining; the next `make repro` is quiet again."""
    root, _ = made
    before = {e: len(runs(root, e)) for e in ("gradlab", "gradlab-study")}
    for store in root.glob("mlflow.db*"):
        store.unlink()

    back = make(root, "repro")

    assert back.returncode == 0, back.stdout + back.stderr
    assert "lacks 9 of the 9 runs of 'gradlab'" in back.stderr
    assert "train:" not in back.stderr  # nothing retrained: no training progress bar
    assert {e: len(runs(root, e)) for e in before} == before
    assert all(r.info.status == "FINISHED" for e in before for r in runs(root, e))
    assert make(root, "repro").stdout == ""


def test_installing_the_dependencies_says_so_and_how_long_it_took(tmp_path: Path) -> None:
    """`make setup` on a machine without them says it is installing, for how long to expect
    and how long it took (a stand-in pip records the call)."""
    root = make_project(tmp_path / "project")
    (root / ".venv").unlink()
    (root / ".venv/bin").mkdir(parents=True)
    fake = root / ".venv/bin/python"
    fake.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/pip.log"\n')
    fake.chmod(0o755)

    done = make(root, "setup")

    assert done.returncode == 0, done.stdout + done.stderr
    said = done.stdout.splitlines()
    assert said[0].startswith("Installing the pinned dependencies") and "minutes" in said[0]
    assert said[1].startswith("Installed in ") and said[1].endswith(" s")
    assert "pip install" in (tmp_path / "pip.log").read_text().replace("-m pip", "pip")


# The runs table as the browser shows it: per row (in row order), each column's text.
READ_TABLE = """() => {
  const rows = {};
  for (const cell of document.querySelectorAll('.ag-row [col-id]')) {
    const index = cell.closest('.ag-row').getAttribute('row-index');
    const lines = cell.innerText.trim().split('\\n');  // a run name follows its colour
    (rows[index] = rows[index] || {})[cell.getAttribute('col-id')] = lines.pop();
  }
  return Object.keys(rows).sort((a, b) => a - b).map(i => rows[i]);
}"""


@pytest.fixture
def ui(made: tuple[Path, str]) -> Iterator[tuple[str, list[str]]]:
    """`make ui PORT=<free port>` running in the built project: its URL and what it printed."""
    root, _ = made
    port = free_port()
    log = root.parent / "ui.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["make", "ui", f"PORT={port}"],
            cwd=root,
            env=sandbox_env(root.parent),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make, mlflow and uvicorn: one group to stop
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, log)
        yield url, log.read_text().splitlines()
    finally:
        stop_group(proc)


def test_make_ui_prints_links_that_open_on_the_winners_ranked(
    made: tuple[Path, str], ui: tuple[str, list[str]], browser: Any
) -> None:
    """`make ui PORT=...` prints, for that port, the link publish printed; in Chromium it
    opens, with no click, the study's winners only (each task's best), ranked by iqm_steps,
    under the experiment's description."""
    root, _ = made
    url, printed = ui
    study_link = next(line.split()[-1] for line in printed if "the study's winners" in line)
    assert study_link.startswith(f"{url}/#/experiments/")
    sets = pd.read_csv(root / "reports/study/winners.csv")  # each task's best (ties: each)
    summary = pd.read_csv(root / "reports/study/summary.csv")
    winners = summary[summary["config"].isin(sets[sets["best"]]["config"])]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(study_link)
        page.wait_for_selector(".ag-row", timeout=120_000)
        page.wait_for_timeout(1000)  # the rows of one page arrive together
        page.screenshot(path=str(root.parent / "ui.png"))
        rows = page.evaluate(READ_TABLE)
        body = page.inner_text("body")
    finally:
        page.close()

    names = [r["attributes.`Run Name`"] for r in rows]
    shown = [float(r["metrics.`iqm_steps`"] or "inf") for r in rows]
    assert sorted(names) == sorted(winners["config"])
    assert shown == sorted(shown)
    assert shown[0] == winners["iqm_steps"].min()
    assert "gradlab's study" in body and "Model training" in body


def test_dvc_parses_yaml_with_libyaml() -> None:
    """DVC reads dvc.yaml, dvc.lock and params.yaml through ruamel's safe loader, several
    times per `dvc repro`: in this venv it runs libyaml's C parser (ruamel.yaml.clib), not
    the pure-Python one that made a no-op repro twice as slow, and reads the same data."""
    from dvc.utils.serialize import parse_yaml
    from ruamel.yaml import YAML

    assert YAML(typ="safe").Parser.__name__ == "CParser"
    text = (ROOT / "dvc.lock").read_text()
    assert parse_yaml(text, "dvc.lock") == YAML(typ="safe", pure=True).load(text)
