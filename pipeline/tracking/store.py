"""The one module that creates MLflow runs: what publish asks for, once per content key.

Publishing is idempotent, across processes and hosts: under the store's lock
(pipeline.tracking.lock) a run is created only for a content key without a FINISHED run
that holds its content (pipeline.tracking.ledger: a wrong or second run of a key is
replaced, and runs a gone publish left RUNNING are closed). A second `dvc repro`, a forced
rerun with identical results, a run-cache restore, a second checkout publishing the same
outputs add nothing; a deleted mlflow.db is filled again. A resumed publish puts its runs
under the parent the interrupted one opened.
"""

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.files.atomic import DiskFull
from pipeline.run import interrupt
from pipeline.run.interrupt import Terminated
from pipeline.tracking import ledger, location, lock, space, views
from pipeline.tracking.location import CONTENT_KEY, TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient

PARENT_RUN_TAG = "mlflow.parentRunId"
HOST_TAG, PID_TAG = lock.HOST_TAG, lock.PID_TAG
POINT_BYTES = 350  # a metric point in a SQLite store with its indexes (26 MB: 73,402)


Progress = Callable[[Iterable["RunContent"]], Iterable["RunContent"]]  # e.g. tqdm
# content key -> run id of every FINISHED run -> the experiment's tags (pipeline.tracking.views)
Describe = Callable[[dict[str, str]], dict[str, str]]


def nothing(folder: Path) -> list[Path]:
    """No drawn artifacts."""
    return []


@dataclass(frozen=True)
class RunContent:
    """Everything one MLflow run holds."""

    name: str
    key: str  # content key: what the run is made of (equal inputs, equal key)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int]] = field(default_factory=list)  # key, value, step
    artifacts: list[Path] = field(default_factory=list)
    # pictures of the run drawn in a context beyond it (a grid cell's path over the grid's
    # common view): logged, but no part of the payload, which the context would change
    pictures: list[Path] = field(default_factory=list)
    # artifacts drawn into a folder when the run is created (Graphviz's SVG): its version
    # decides their bytes, so they are no part of the payload
    drawn: Callable[[Path], list[Path]] = nothing

    @cached_property
    def payload(self) -> str:
        """A digest of what the run holds but its tags (commit, host: who published it):
        its name, params, every metric point and each artifact's name and bytes."""
        digest = hashlib.sha256()
        head = {"name": self.name, "params": sorted(self.params.items())}
        digest.update(json.dumps(head).encode())
        for key, value, step in sorted(self.metrics):
            digest.update(f"{key}\0{step}\0{float(value).hex()}\n".encode())
        for path in self.artifacts:
            digest.update(f"{path.name}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Outcome:
    experiment_id: str
    created: int  # cell runs created now
    present: int  # cell runs that were already there
    replaced: int = 0  # runs replaced: wrong content, or a second run of a key
    notes: list[str] = field(default_factory=list)  # what was replaced or closed, and why


class _NoTraceback(logging.Filter):
    """MLflow logs the traceback of a database error it then raises: publish says it in
    one line instead (a full disk, a locked or unreachable database)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None


def _client(uri: str) -> "MlflowClient":
    # bounded retries: the default retry policy blocks ~4 minutes on a dead server
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow import MlflowClient

    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _NoTraceback) for f in logger.filters):
        logger.addFilter(_NoTraceback())

    if uri.startswith("sqlite:"):
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        if not event.contains(Engine, "connect", location.write_ahead):
            event.listen(Engine, "connect", location.write_ahead)
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: "MlflowClient", name: str, root: Path, uri: str) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    # a local store keeps artifacts beside mlflow.db, never in the (temporary) cwd
    location = (root / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:") else None
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException as e:  # another publisher created it a moment ago
        if (again := client.get_experiment_by_name(name)) is None:
            raise e from None
        return str(again.experiment_id)


def _log(client: "MlflowClient", run_id: str, content: RunContent) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, s) for k, v, s in content.metrics],
        params=[Param(k, v) for k, v in content.params.items()],
    )
    for path in [*content.artifacts, *content.pictures]:
        client.log_artifact(run_id, str(path))
    with tempfile.TemporaryDirectory(prefix="gradlab-publish-") as folder:
        for path in content.drawn(Path(folder)):
            client.log_artifact(run_id, str(path))
    client.set_tag(run_id, location.PAYLOAD_TAG, content.payload)


def publish(
    uri: str,
    experiment: str,
    cells: list[RunContent],
    parent: RunContent,
    root: Path,
    progress: Progress = iter,
    describe: Describe | None = None,
) -> Outcome:
    """Make the experiment hold each of `cells` once, nested under `parent`, whatever it
    held before, and set the experiment's tags `describe` makes (before the parent closes:
    a FINISHED parent means they are there). On any exception the runs opened here end
    FAILED, on SIGINT/SIGTERM KILLED. Nothing to do (SQLite, read directly): no `import
    mlflow`."""
    location.check(uri)
    if (held := location.holdings(uri, experiment)) is not None:
        experiment_id, finished, running = held
        wanted = [*cells, parent]
        settled = not running and all(finished.get(c.key) == [c.payload] for c in wanted)
        view = views.VIEW_TAG + parent.key  # described: its view is there
        if settled and (describe is None or location.has_tag(uri, experiment_id, view)):
            return Outcome(experiment_id, 0, len(cells))
    location.reachable(uri)
    # MLflow's INFO lines ("Creating initial MLflow database tables") would land in the
    # middle of the stage's summary; it reads the level once, at import
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from mlflow.exceptions import MlflowException  # ~1.4 s: only when there is work to do

    try:
        with lock.file_lock(uri) as held_file:
            client = _client(uri)
            experiment_id = _experiment_id(client, experiment, root, uri)
            with lock.claim(client, experiment_id, held_file) as holder:
                return _settle(client, experiment_id, cells, parent, holder, progress, describe)
    except Exception as e:
        if (path := space.full_at(e, uri, root)) is not None:  # the database or the artifacts
            kept = "the runs finished are kept, `make publish` adds the rest"
            needed = space.size([*cells, parent], POINT_BYTES)
            raise DiskFull(path, needed, kept) from None
        if isinstance(e, MlflowException):
            raise TrackingError(_explain(uri, str(e).splitlines()[0])) from None
        if isinstance(e, ModuleNotFoundError):  # a database URI whose driver is missing
            raise TrackingError(
                f"MLFLOW_TRACKING_URI={uri!r} needs the Python module {e.name!r}, which is "
                "not installed; for PostgreSQL use postgresql+psycopg2://... (psycopg2 is)"
            ) from None
        raise


def _settle(
    client: "MlflowClient",
    experiment_id: str,
    cells: list[RunContent],
    parent: RunContent,
    holder: lock.Holder,
    progress: Progress,
    describe: Describe | None,
) -> Outcome:
    """Under the lock: close stale runs, settle every key, create what is missing, describe
    the experiment."""
    notes = ledger.close_stale(client, experiment_id, holder.id)
    book = ledger.Ledger.read(client, experiment_id)
    done: dict[str, str] = {}
    todo = []
    for content in cells:
        if (run_id := book.settle(client, content)) is None:
            todo.append(content)
        else:
            done[content.key] = run_id
    parent_id = book.settle(client, parent)
    if todo or parent_id is None:
        _publish_new(
            client, experiment_id, todo, parent, parent_id, holder, progress, done, describe
        )
    elif describe is not None:  # e.g. a store published before views existed
        _set_tags(client, experiment_id, describe(done | {parent.key: parent_id}))
    notes += book.notes
    return Outcome(experiment_id, len(todo), len(cells) - len(todo), book.replaced, notes)


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
    parent_id: str | None,
    holder: lock.Holder,
    progress: Progress,
    done: dict[str, str],
    describe: Describe | None,
) -> None:
    """Create the runs of `todo` under the parent run `parent_id`; without one, under the
    run of the parent's key a publish left unfinished (adopted), else a new one."""
    owner = {**lock.owner(), lock.LOCK_TAG: holder.id}
    open_runs: list[str] = []

    def start(content: RunContent, extra: dict[str, str]) -> str:
        tags = {**content.tags, **owner, **extra, CONTENT_KEY: content.key}
        run_id = str(client.create_run(experiment_id, tags=tags, run_name=content.name).info.run_id)
        open_runs.append(run_id)
        return run_id

    try:
        finished = parent_id is not None
        if parent_id is None and (parent_id := ledger.adoptable(client, experiment_id, parent.key)):
            client.update_run(parent_id, status="RUNNING")  # resumed: one parent, not two
            for key, value in owner.items():
                client.set_tag(parent_id, key, value)
            open_runs.append(parent_id)
        parent_id = parent_id or start(parent, {})
        for content in progress(todo):
            interrupt.check()  # a signal swallowed inside an MLflow finalizer stops us here
            holder.heartbeat()
            run_id = start(content, {PARENT_RUN_TAG: parent_id})
            _log(client, run_id, content)
            client.set_terminated(run_id, "FINISHED")
            open_runs.remove(run_id)
            done[content.key] = run_id
        interrupt.check()
        if describe is not None:
            _set_tags(client, experiment_id, describe(done | {parent.key: parent_id}))
        if not finished:
            _log(client, parent_id, parent)
            client.set_terminated(parent_id, "FINISHED")
            open_runs.remove(parent_id)
    except BaseException as e:
        status = "KILLED" if isinstance(e, KeyboardInterrupt | Terminated) else "FAILED"
        for run_id in reversed(open_runs):
            client.set_terminated(run_id, status)
        raise
