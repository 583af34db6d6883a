"""The publish stage against real servers: HTTP, basic auth, a dead server, bad URIs,
PostgreSQL (team mode), and a DVC remote that restores outputs without re-training."""

import hashlib
import json
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import psycopg2
import pytest
from mlflow import MlflowClient
from ruamel.yaml import YAML

from tests.conftest import cell_names, copy_project, small_grid, write_params
from tests.helpers.servers import (
    BIN,
    auth_server,
    free_port,
    listening,
    mlflow_server,
    pg_server,
    postgres,
    sandbox_env,
)
from tools import deps

pytestmark = pytest.mark.slow
# the imported fixtures, re-exported: pytest finds them by name, ruff sees them used
__all__ = ["auth_server", "mlflow_server", "pg_server", "postgres"]
TIMEOUT_S = 300  # any one dvc/git command; a hang fails instead of blocking CI
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}
CELLS = 8  # small_grid: 2 losses x 2 optimizers x 2 clips


def run(
    root: Path, *cmd: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`cmd` in `root` with an explicit sandboxed environment (homes and caches in tmp)."""
    environ = sandbox_env(root.parent, **GIT_IDENTITY, **(env or {}))
    done = subprocess.run(
        cmd, cwd=root, env=environ, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def dvc(
    root: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run(root, str(BIN / "dvc"), *args, env=env, check=check)


def dvc_timed(
    root: Path, *args: str, env: dict[str, str], marker: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Like `dvc`, plus the seconds from the stdout line holding `marker` to the exit."""
    cmd, pipe = [str(BIN / "dvc"), *args], subprocess.PIPE
    environ = sandbox_env(root.parent, **GIT_IDENTITY, **env)
    with (
        subprocess.Popen(cmd, cwd=root, env=environ, stdout=pipe, stderr=pipe, text=True) as proc,
        ThreadPoolExecutor(1) as pool,
    ):
        watchdog = threading.Timer(TIMEOUT_S, proc.kill)
        watchdog.start()
        err = pool.submit(proc.stderr.read)  # drained alongside stdout: no pipe fills up
        out, seen = [], None
        for line in proc.stdout:
            out.append(line)
            if seen is None and marker in line:
                seen = time.monotonic()
        proc.wait()
        ended = time.monotonic()
        watchdog.cancel()
    assert seen is not None, f"{marker!r} never printed:\n{''.join(out)}{err.result()}"
    done = subprocess.CompletedProcess(cmd, proc.returncode, "".join(out), err.result())
    return done, ended - seen


def use_experiment(root: Path, name: str) -> None:
    """Publish `root` to its own experiment, so one server serves several tests apart."""
    data = YAML(typ="safe").load((root / "params.yaml").read_text())
    data["publish"]["experiment"] = name
    write_params(root / "params.yaml", data)


def experiment_runs(uri: str, name: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def cell_runs(uri: str, name: str) -> list:
    return [r for r in experiment_runs(uri, name) if "mlflow.parentRunId" in r.data.tags]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def upstream(root: Path) -> set[str]:
    """The stages before publish that are not always_changed (all but env): outputs only."""
    stages = deps.stages(root)
    return {n for n, stage in stages.items() if not stage.get("always_changed")} - {"publish"}


def assert_upstream_outputs(root: Path) -> None:
    """Every stage's outputs but publish's are there, and DVC sees them up to date."""
    assert len(list((root / "traces").glob("*.csv"))) == CELLS
    for path in ("data/points.csv", "reports/cells.csv", "reports/compare.md"):
        assert (root / path).is_file(), path
    assert (root / "reports/walkthrough/walkthrough.md").is_file()
    status = json.loads(dvc(root, "status", "--json").stdout)
    assert not set(status) & upstream(root), status


def digests(root: Path) -> dict[str, str]:
    """sha256 of every DVC output file (data, traces, reports)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for d in ("data", "traces", "reports")
        for p in sorted((root / d).rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, raw_params: dict) -> Path:
    """A project copy with the small grid, built up to (not including) publish."""
    root = tmp_path_factory.mktemp("built") / "project"
    root.mkdir()
    copy_project(root)
    write_params(root / "params.yaml", small_grid(raw_params))
    dvc(root, "repro", "compare", "walkthrough", "analysis", "explorer")
    return root


@pytest.mark.parametrize("server", ["mlflow_server", "auth_server", "pg_server", "postgres"])
def test_servers_listen_on_loopback_only(server: str, request: pytest.FixtureRequest) -> None:
    """Every server the fixtures start listens on 127.0.0.1 and nowhere else."""
    value = request.getfixturevalue(server)
    uri = value[0] if isinstance(value, tuple) else value
    assert listening(urlparse(uri).port) == {"127.0.0.1"}


def test_http_server_gets_every_cell_once(project: Path, mlflow_server: str) -> None:
    """Over HTTP every cell lands once with params, histories and artifacts; a rerun adds none."""
    use_experiment(project, "http")
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    out = dvc(project, "repro", "--force", "--single-item", "publish", env=env).stdout
    assert f"{CELLS} new cell runs, 0 already there" in out
    cells = cell_runs(mlflow_server, "http")
    assert sorted(r.info.run_name for r in cells) == sorted(cell_names(project))
    assert len(experiment_runs(mlflow_server, "http")) == CELLS + 1  # and one parent
    assert {r.info.status for r in experiment_runs(mlflow_server, "http")} == {"FINISHED"}
    run = next(r for r in cells if r.info.run_name == "l1-sgd-norm")
    assert (run.data.params["loss"], run.data.params["optimizer"]) == ("l1", "sgd")
    client = MlflowClient(mlflow_server)
    for series in ("loss", "grad_norm", "weight", "bias"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, series)]
        assert steps == list(range(30)), series  # 30 steps, publish.points 30: every one
    trace = Path(client.download_artifacts(run.info.run_id, "l1-sgd-norm.csv", str(project.parent)))
    assert trace.read_bytes() == (project / "traces/l1-sgd-norm.csv").read_bytes()
    assert not (project / "mlflow.db").exists() and not (project / "mlartifacts").exists()

    again = dvc(project, "repro", "--force", "--single-item", "publish", env=env).stdout
    assert f"0 new cell runs, {CELLS} already there" in again
    assert len(experiment_runs(mlflow_server, "http")) == CELLS + 1


def test_a_server_that_lost_its_runs_gets_them_back_from_plain_dvc_repro(
    project: Path, mlflow_server: str
) -> None:
    """Runs deleted on the server (as a wiped store loses them): the next `dvc repro` asks
    the server, finds the receipt's parent gone and publishes every cell again; the repro
    after that publishes nothing."""
    use_experiment(project, "lost")
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    dvc(project, "repro", env=env)
    client = MlflowClient(mlflow_server)
    for run in experiment_runs(mlflow_server, "lost"):
        client.delete_run(run.info.run_id)

    back = dvc(project, "repro", env=env)

    assert "lacks 1 of the 1 runs of 'lost'" in back.stderr  # the parent: one search
    assert f"{CELLS} new cell runs, 0 already there" in back.stdout
    assert "Running stage 'train'" not in back.stdout
    assert "Running stage 'publish'" not in dvc(project, "repro", env=env).stdout


def test_basic_auth_takes_credentials_from_the_environment(
    project: Path, auth_server: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Basic auth: no credentials exits 1 naming the 401 and the fix; env credentials publish."""
    uri, username, password = auth_server
    use_experiment(project, "auth")
    publish = ("repro", "--force", "--single-item", "publish")  # `make publish`
    denied = dvc(project, *publish, env={"MLFLOW_TRACKING_URI": uri}, check=False)
    assert denied.returncode != 0 and "exited with 1" in denied.stderr
    (line,) = error_lines(denied.stderr)
    assert "401" in line or "refused" in line
    assert uri in line and "MLFLOW_TRACKING_USERNAME" in line and "MLFLOW_TRACKING_PASSWORD" in line

    creds = {"MLFLOW_TRACKING_USERNAME": username, "MLFLOW_TRACKING_PASSWORD": password}
    allowed = dvc(project, *publish, env={"MLFLOW_TRACKING_URI": uri, **creds})
    assert f"{CELLS} new cell runs" in allowed.stdout
    assert password not in denied.stdout + denied.stderr + allowed.stdout + allowed.stderr
    for key, value in creds.items():
        monkeypatch.setenv(key, value)  # for our own read-back client
    assert sorted(r.info.run_name for r in cell_runs(uri, "auth")) == sorted(cell_names(project))


def test_server_down_fails_fast_keeps_outputs_and_make_publish_fills_in(
    tmp_path: Path, raw_params: dict, mlflow_server: str
) -> None:
    """A dead server fails publish in seconds, outputs kept; `make publish` then lands each once."""
    root = tmp_path / "project"
    root.mkdir()
    copy_project(root)
    write_params(root / "params.yaml", small_grid(raw_params))
    use_experiment(root, "down")
    dead = f"http://127.0.0.1:{free_port()}"
    failed, seconds = dvc_timed(
        root, "repro", env={"MLFLOW_TRACKING_URI": dead}, marker="Running stage 'publish'"
    )
    assert failed.returncode != 0 and "exited with 1" in failed.stderr
    assert seconds < 60  # fails fast: not the minutes of MLflow's default retries (7 s idle)
    (line,) = error_lines(failed.stderr)
    assert dead in line and "make publish" in line
    assert_upstream_outputs(root)

    env = {"MLFLOW_TRACKING_URI": mlflow_server}  # the server is up now
    out = dvc(root, "repro", "--force", "--single-item", "publish", env=env).stdout
    assert f"{CELLS} new cell runs, 0 already there" in out
    assert sorted(r.info.run_name for r in cell_runs(mlflow_server, "down")) == sorted(
        cell_names(root)
    )
    again = dvc(root, "repro", "--force", "--single-item", "publish", env=env).stdout
    assert f"0 new cell runs, {CELLS} already there" in again
    assert len(experiment_runs(mlflow_server, "down")) == CELLS + 1


@pytest.mark.parametrize("uri", ["htpp://127.0.0.1:5000", "./mlruns"])
def test_bad_uri_fails_publish_naming_it_and_keeps_outputs(project: Path, uri: str) -> None:
    """A misspelt scheme or ./mlruns exits 1 naming the URI; outputs stay, no store appears."""
    before = digests(project)
    failed = dvc(project, "repro", env={"MLFLOW_TRACKING_URI": uri}, check=False)
    assert failed.returncode != 0 and "exited with 1" in failed.stderr
    (line,) = error_lines(failed.stderr)
    assert repr(uri) in line
    assert digests(project) == before
    assert_upstream_outputs(project)
    assert not (project / "mlruns").exists() and not (project / "mlflow.db").exists()


def test_postgres_backed_server_gets_every_cell_once(
    project: Path, postgres: str, pg_server: str
) -> None:
    """Team mode: a PostgreSQL-backed server gets each cell once, and `make publish` adds none."""
    use_experiment(project, "team")
    env = {"MLFLOW_TRACKING_URI": pg_server}
    assert f"{CELLS} new cell runs" in dvc(project, "repro", env=env).stdout
    again = dvc(project, "repro", "--force", "--single-item", "publish", env=env).stdout
    assert f"0 new cell runs, {CELLS} already there" in again
    assert sorted(r.info.run_name for r in cell_runs(pg_server, "team")) == sorted(
        cell_names(project)
    )
    with psycopg2.connect(postgres) as db, db.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM runs r JOIN experiments e USING (experiment_id) "
            "WHERE e.name = 'team' AND r.lifecycle_stage = 'active'"
        )  # each publish's claim run (one publisher per store) ends deleted
        assert cur.fetchone() == (CELLS + 1,)


def test_dvc_remote_restores_outputs_in_a_clone_without_retraining(
    project: Path, tmp_path: Path
) -> None:
    """push, git clone, pull: the clone is up to date and `dvc repro` retrains nothing."""
    dvc(project, "repro")  # the whole pipeline, publish (to the local SQLite store) included
    remote = tmp_path / "remote"
    dvc(project, "remote", "add", "--local", "-d", "local", str(remote))
    dvc(project, "push")
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-qm", "outputs")
    tracked = run(project, "git", "ls-files").stdout.split()
    assert {"dvc.lock", "reports/cells.csv", "reports/compare.md"} <= set(tracked)
    assert not [f for f in tracked if f.startswith(("traces/", "data/points", ".dvc/cache"))]

    clone = tmp_path / "clone"
    run(project, "git", "clone", "-q", ".", str(clone))
    assert not (clone / "data/points.csv").exists() and not (clone / "traces").exists()
    dvc(clone, "remote", "add", "--local", "-d", "local", str(remote))
    dvc(clone, "pull")
    status = json.loads(dvc(clone, "status", "--json").stdout)
    missing = {"changed outs": {"reports/published.json": "deleted"}}  # a clone publishes
    assert status == {"env/dvc.yaml:env": ["always changed"], "publish": [missing]}, status
    out = dvc(clone, "repro").stdout
    assert "Running stage 'env/dvc.yaml:env'" in out
    assert "Running stage 'train'" not in out
    assert not [s for s in upstream(clone) if f"Running stage '{s}'" in out], out
    assert digests(clone) == digests(project)


def _race(roots: list[Path], env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """`make publish` in each checkout, all started at the same moment."""
    cmd = [str(BIN / "dvc"), "repro", "--force", "--single-item", "publish"]
    procs = [
        subprocess.Popen(
            cmd, cwd=root, env=sandbox_env(root.parent, **GIT_IDENTITY, **env),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for root in roots
    ]  # fmt: skip
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT_S)
        done.append(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
    return done


@pytest.mark.parametrize("store", ["new sqlite", "server"])
def test_two_checkouts_publishing_at_once_leave_one_finished_run_per_key(
    project: Path, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """The README's team setup: two checkouts `make publish` at the same moment to one
    store, a brand-new SQLite database or a real `mlflow server`. Both exit 0; every
    content key of both experiments ends with exactly one FINISHED run, nothing RUNNING
    (the lock covered one checkout: 84 keys landed twice, and a new SQLite store failed
    with `table experiments already exists`)."""
    second = tmp_path / "second" / "project"
    shutil.copytree(project, second, symlinks=True)
    if store == "server":
        uri = request.getfixturevalue("mlflow_server")
    else:
        (tmp_path / "shared").mkdir()
        uri = f"sqlite:///{tmp_path}/shared/mlflow.db"
    names = {"experiment": f"race-{store[:3]}", "study_experiment": f"race-{store[:3]}-study"}
    for root in (project, second):
        data = YAML(typ="safe").load((root / "params.yaml").read_text())
        data["publish"].update(names)
        write_params(root / "params.yaml", data)

    done = _race([project, second], {"MLFLOW_TRACKING_URI": uri})

    for run_ in done:
        assert run_.returncode == 0, run_.stdout + run_.stderr
        assert "already exists" not in run_.stderr and "Traceback" not in run_.stderr
    for name in names.values():
        runs = experiment_runs(uri, name)
        finished = [r.data.tags["content_key"] for r in runs if r.info.status == "FINISHED"]
        assert len(finished) == len(set(finished)) and len(finished) > 1, name
        assert {r.info.status for r in runs} == {"FINISHED"}, name
    cells = [r for r in cell_runs(uri, names["experiment"]) if r.info.status == "FINISHED"]
    assert sorted(r.info.run_name for r in cells) == sorted(cell_names(project))
