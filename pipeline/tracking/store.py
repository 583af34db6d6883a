"""The one module that talks to MLflow.

Publishing is idempotent: each run carries a content key (a digest of its settings, data
and results) and a run is only created for keys that have no FINISHED run yet. That makes
a second `dvc repro`, a forced rerun with identical results and a DVC run-cache restore
add nothing, while a deleted mlflow.db is filled again on the next run.
"""

import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.run import interrupt
from pipeline.run.interrupt import Terminated
from pipeline.tracking import location
from pipeline.tracking.location import CONTENT_KEY, TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

PARENT_RUN_TAG = "mlflow.parentRunId"
HOST_TAG, PID_TAG = "gradlab.host", "gradlab.pid"  # to find runs a killed process left open
LOCK_FILE = ".gradlab-publish.lock"


Progress = Callable[[Iterable["RunContent"]], Iterable["RunContent"]]  # e.g. tqdm
# content key -> run id of every FINISHED run -> the experiment's tags (pipeline.tracking.views)
Describe = Callable[[dict[str, str]], dict[str, str]]


@dataclass(frozen=True)
class RunContent:
    """Everything one MLflow run holds."""

    name: str
    key: str  # content key: equal content, equal key
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int]] = field(default_factory=list)  # key, value, step
    artifacts: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    experiment_id: str
    created: int  # cell runs created now
    present: int  # cell runs that were already there


@contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """One publisher at a time on this machine: no duplicate runs from parallel
    `dvc queue` workers, no SQLite schema-migration race on a fresh database."""
    with open(root / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _client(uri: str) -> "MlflowClient":
    # bounded retries: the default retry policy blocks ~4 minutes on a dead server
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow import MlflowClient

    if uri.startswith("sqlite:"):
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        if not event.contains(Engine, "connect", location.write_ahead):
            event.listen(Engine, "connect", location.write_ahead)
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: "MlflowClient", name: str, root: Path, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    # a local store keeps artifacts beside mlflow.db, never in the (temporary) cwd
    location = (root / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:") else None
    return str(client.create_experiment(name, artifact_location=location))


def _runs(client: "MlflowClient", experiment_id: str, status: str) -> Iterator["Run"]:
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], f"attributes.status = '{status}'", max_results=1000, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


def _close_abandoned(client: "MlflowClient", experiment_id: str) -> int:
    """Mark KILLED the runs a dead gradlab process on this host left RUNNING."""
    host, closed = socket.gethostname(), 0
    for run in _runs(client, experiment_id, "RUNNING"):
        tags = run.data.tags
        if tags.get(HOST_TAG) == host and not _alive(int(tags.get(PID_TAG, "0") or 0)):
            client.set_terminated(run.info.run_id, "KILLED")
            closed += 1
    return closed


def _log(client: "MlflowClient", run_id: str, content: RunContent) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, s) for k, v, s in content.metrics],
        params=[Param(k, v) for k, v in content.params.items()],
    )
    for path in content.artifacts:
        client.log_artifact(run_id, str(path))


def publish(
    uri: str,
    experiment: str,
    cells: list[RunContent],
    parent: RunContent,
    root: Path,
    progress: Progress = iter,
    describe: Describe | None = None,
) -> Outcome:
    """Create the runs whose content key has no FINISHED run yet, cells nested under a new
    parent run, and set the experiment's tags `describe` makes (before the parent closes:
    a FINISHED parent means they are there). On any exception the runs opened here end
    FAILED, on SIGINT/SIGTERM KILLED."""
    location.check(uri)
    location.reachable(uri)
    # MLflow's INFO lines ("Creating initial MLflow database tables") would land in the
    # middle of the stage's summary; it reads the level once, at import
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from mlflow.exceptions import MlflowException  # ~1.4 s: only when there is work to do

    try:
        client = _client(uri)
        with _exclusive(root):
            experiment_id = _experiment_id(client, experiment, root, uri)
            _close_abandoned(client, experiment_id)
            runs = _runs(client, experiment_id, "FINISHED")
            done = {str(r.data.tags.get(CONTENT_KEY)): str(r.info.run_id) for r in runs}
            todo = [c for c in cells if c.key not in done]
            if todo or parent.key not in done:
                _publish_new(client, experiment_id, todo, parent, progress, done, describe)
            elif describe is not None:  # e.g. a store published before views existed
                _set_tags(client, experiment_id, describe(done))
    except MlflowException as e:
        raise TrackingError(_explain(uri, str(e).splitlines()[0])) from None
    except ModuleNotFoundError as e:  # a database URI whose driver is not installed
        raise TrackingError(
            f"MLFLOW_TRACKING_URI={uri!r} needs the Python module {e.name!r}, which is not "
            "installed; for PostgreSQL use postgresql+psycopg2://... (psycopg2 is installed)"
        ) from None
    return Outcome(experiment_id, len(todo), len(cells) - len(todo))


def _explain(uri: str, error: str) -> str:
    """One line saying what the server answered and what to do about it."""
    if "401" in error or "Unauthorized" in error:
        return (
            f"the MLflow server at {uri} refused the credentials ({error}); "
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if "403" in error or "Permission" in error:
        return (
            f"the MLflow server at {uri} denied this user access ({error}); "
            "ask its admin for EDIT permission on the experiment, or publish to another one"
        )
    return f"MLflow at {uri} failed: {error}"


def _set_tags(client: "MlflowClient", experiment_id: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_experiment_tag(experiment_id, key, value)


def _publish_new(
    client: "MlflowClient",
    experiment_id: str,
    todo: list[RunContent],
    parent: RunContent,
    progress: Progress,
    done: dict[str, str],
    describe: Describe | None,
) -> None:
    owner = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    open_runs: list[str] = []

    def start(content: RunContent, extra: dict[str, str]) -> str:
        tags = {**content.tags, **owner, **extra, CONTENT_KEY: content.key}
        run_id = str(client.create_run(experiment_id, tags=tags, run_name=content.name).info.run_id)
        open_runs.append(run_id)
        return run_id

    try:
        parent_id = start(parent, {})
        for content in progress(todo):
            interrupt.check()  # a signal swallowed inside an MLflow finalizer stops us here
            run_id = start(content, {PARENT_RUN_TAG: parent_id})
            _log(client, run_id, content)
            client.set_terminated(run_id, "FINISHED")
            open_runs.remove(run_id)
            done[content.key] = run_id
        interrupt.check()
        if describe is not None:
            _set_tags(client, experiment_id, describe(done | {parent.key: parent_id}))
        _log(client, parent_id, parent)
        client.set_terminated(parent_id, "FINISHED")
        open_runs.remove(parent_id)
    except BaseException as e:
        status = "KILLED" if isinstance(e, KeyboardInterrupt | Terminated) else "FAILED"
        for run_id in reversed(open_runs):
            client.set_terminated(run_id, status)
        raise
