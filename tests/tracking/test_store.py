"""MLflow publishing against a real SQLite store in tmp_path: contract and idempotency."""

import errno
import os
import socket
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Param

from pipeline.files import atomic
from pipeline.tracking import ledger, location, lock, prune, store


def _content(name: str, key: str, tmp_path: Path) -> store.RunContent:
    artifact = tmp_path / f"{name}.csv"
    artifact.write_text("step,loss\n0,1.0\n")
    return store.RunContent(
        name=name,
        key=key,
        params={"lr": "0.1"},
        tags={"cell": name},
        metrics=[("loss", 1.0, 0), ("loss", 0.5, 10), ("final_loss", 0.25, 0)],
        artifacts=[artifact],
    )


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


def _runs(uri: str, status: str | None = None) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("test")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if status is None or r.info.status == status]


def _publish(
    uri: str, tmp_path: Path, keys: list[str], parent_key: str = "p1", **kw
) -> store.Outcome:
    cells = [_content(f"cell{i}", k, tmp_path) for i, k in enumerate(keys)]
    parent = store.RunContent(name="grid", key=parent_key)
    return store.publish(uri, "test", cells, parent, tmp_path, **kw)


def interrupt_after_one(runs):
    """A progress wrapper that stops a publish with Ctrl-C after its first run."""
    for i, run in enumerate(runs):
        if i == 1:
            raise KeyboardInterrupt
        yield run


def test_default_uri_is_absolute_sqlite_at_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without MLFLOW_TRACKING_URI the uri is sqlite:///<absolute root>/mlflow.db."""
    assert location.default_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert location.default_uri(tmp_path) == "http://127.0.0.1:5999"


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("./mlruns", "file store is deprecated"),
        ("file:///tmp/mlruns", "file store is deprecated"),
        ("sqlte:///tmp/mlflow.db", "unknown scheme 'sqlte'"),
        ("htp://127.0.0.1:5000", "unknown scheme 'htp'"),
    ],
)
def test_unusable_uris_are_refused_with_the_fix(uri: str, words: str) -> None:
    """A file uri or a misspelt scheme is refused naming the URI and what to use."""
    with pytest.raises(location.TrackingError, match=words) as caught:
        location.check(uri)
    assert uri in str(caught.value)


def test_publish_creates_nested_runs_with_params_metrics_tags_artifacts(
    uri: str, tmp_path: Path
) -> None:
    """Each cell lands once, nested under the parent, with its history, params and artifact."""
    outcome = _publish(uri, tmp_path, ["a", "b"])
    assert (outcome.created, outcome.present) == (2, 0)
    runs = {r.info.run_name: r for r in _runs(uri)}
    assert set(runs) == {"grid", "cell0", "cell1"}
    parent_id = runs["grid"].info.run_id
    cell = runs["cell0"]
    assert cell.data.tags["mlflow.parentRunId"] == parent_id
    assert cell.data.tags["content_key"] == "a" and cell.data.params == {"lr": "0.1"}
    history = MlflowClient(uri).get_metric_history(cell.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (10, 0.5)]
    assert [a.path for a in MlflowClient(uri).list_artifacts(cell.info.run_id)] == ["cell0.csv"]
    assert all(r.info.status == "FINISHED" for r in runs.values())


def test_publishing_again_adds_nothing(uri: str, tmp_path: Path) -> None:
    """A second publish of the same content creates no run, and the fast path sees them all."""
    _publish(uri, tmp_path, ["a", "b"])
    outcome = _publish(uri, tmp_path, ["a", "b"])
    assert (outcome.created, outcome.present) == (0, 2) and len(_runs(uri)) == 3
    held = location.holdings(uri, "test")
    assert held is not None and (held[0], set(held[1])) == (outcome.experiment_id, {"a", "b", "p1"})


def test_changed_cell_gets_a_new_run_and_the_old_stays(uri: str, tmp_path: Path) -> None:
    """Changing one cell's content adds one run; the earlier run is kept."""
    _publish(uri, tmp_path, ["a", "b"])
    outcome = _publish(uri, tmp_path, ["a", "b2"], parent_key="p2")
    keys = sorted(r.data.tags["content_key"] for r in _runs(uri))
    assert outcome.created == 1 and keys == ["a", "b", "b2", "p1", "p2"]


def test_interrupt_marks_open_runs_killed_and_next_publish_completes(
    uri: str, tmp_path: Path
) -> None:
    """Ctrl-C mid-publish ends the open runs KILLED; the next publish adds only what is missing."""

    with pytest.raises(KeyboardInterrupt):
        _publish(uri, tmp_path, ["a", "b", "c"], progress=interrupt_after_one)
    assert {r.info.status for r in _runs(uri)} == {"FINISHED", "KILLED"}
    assert not _runs(uri, "RUNNING")
    outcome = _publish(uri, tmp_path, ["a", "b", "c"])
    finished = [r.data.tags["content_key"] for r in _runs(uri, "FINISHED")]
    assert outcome.created == 2 and sorted(finished) == ["a", "b", "c", "p1"]


def test_runs_left_running_by_a_dead_process_are_closed_as_killed(uri: str, tmp_path: Path) -> None:
    """A RUNNING run whose gradlab process is gone is marked KILLED at the next publish."""
    _publish(uri, tmp_path, ["a"])
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("test").experiment_id
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    tags = {store.HOST_TAG: socket.gethostname(), store.PID_TAG: str(dead)}
    orphan = client.create_run(exp, tags=tags, run_name="orphan").info.run_id
    alive = client.create_run(exp, tags={**tags, store.PID_TAG: str(os.getpid())}).info.run_id
    _publish(uri, tmp_path, ["a"])
    assert client.get_run(orphan).info.status == "KILLED"
    assert client.get_run(alive).info.status == "RUNNING"


def test_unreachable_server_fails_fast_naming_the_uri(tmp_path: Path) -> None:
    """A closed port fails within seconds with the URI and the fix in one message."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    uri = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    with pytest.raises(location.TrackingError, match="cannot reach") as caught:
        _publish(uri, tmp_path, ["a"])
    assert time.monotonic() - start < 10
    assert uri in str(caught.value) and "make publish" in str(caught.value)


def test_database_uri_without_its_driver_says_which_uri_to_use(tmp_path: Path) -> None:
    """postgresql:// maps to psycopg 3, which is not installed: one line names the fix."""
    uri = "postgresql://u:p@127.0.0.1:1/db"
    with pytest.raises(location.TrackingError, match=r"postgresql\+psycopg2://") as caught:
        _publish(uri, tmp_path, ["a"])
    assert uri in str(caught.value)


# --- runs left RUNNING, a resumed publish, a key published twice (issue 21) -------------------
def _exp(uri: str) -> str:
    return MlflowClient(uri).get_experiment_by_name("test").experiment_id


def test_runs_a_gone_publish_left_running_are_closed_whatever_host_even_with_nothing_new(
    uri: str, tmp_path: Path
) -> None:
    """With nothing new to publish, runs left RUNNING by another host's publish are closed
    as KILLED when their store lock is no longer held, or when they are older than
    STALE_AFTER_S; a recent run of another host without a lock (maybe alive) is kept."""
    _publish(uri, tmp_path, ["a"])
    client, exp = MlflowClient(uri), _exp(uri)
    other = {store.HOST_TAG: "another-host", store.PID_TAG: "4242"}
    old = int((time.time() - ledger.STALE_AFTER_S - 60) * 1000)
    locked = client.create_run(exp, tags={**other, lock.LOCK_TAG: "0" * 32}).info.run_id
    aged = client.create_run(exp, tags=other, start_time=old).info.run_id
    recent = client.create_run(exp, tags=other).info.run_id

    outcome = _publish(uri, tmp_path, ["a"])

    assert (outcome.created, outcome.present) == (0, 1)
    assert [client.get_run(r).info.status for r in (locked, aged, recent)] == [
        "KILLED", "KILLED", "RUNNING"
    ]  # fmt: skip
    assert "no longer held" in client.get_run(locked).data.tags[ledger.CLOSED_TAG]


def test_a_resumed_publish_keeps_one_parent(uri: str, tmp_path: Path) -> None:
    """Interrupted after one cell (its parent KILLED), the next publish puts the rest under
    that parent, which ends FINISHED: one parent, not a KILLED and a FINISHED one."""

    with pytest.raises(KeyboardInterrupt):
        _publish(uri, tmp_path, ["a", "b", "c"], progress=interrupt_after_one)
    _publish(uri, tmp_path, ["a", "b", "c"])

    runs = _runs(uri)
    (parent,) = [r for r in runs if r.info.run_name == "grid"]
    cells = [r for r in runs if r.info.run_name != "grid"]
    assert parent.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in cells} == {parent.info.run_id}
    assert sorted(r.data.tags["content_key"] for r in cells if r.info.status == "FINISHED") == [
        "a", "b", "c"
    ]  # fmt: skip


def test_a_key_published_twice_keeps_one_finished_run(uri: str, tmp_path: Path) -> None:
    """Two FINISHED runs of one key (two checkouts raced before the store lock): the next
    publish keeps the first and replaces the second, saying so."""
    _publish(uri, tmp_path, ["a", "b"])
    client = MlflowClient(uri)
    (b,) = [r for r in _runs(uri) if r.data.tags["content_key"] == "b"]
    twin = client.create_run(_exp(uri), tags=b.data.tags, run_name="cell1").info.run_id
    client.log_batch(twin, params=[Param("lr", "0.1")])
    client.set_terminated(twin, "FINISHED")

    outcome = _publish(uri, tmp_path, ["a", "b"])

    assert (outcome.created, outcome.present, outcome.replaced) == (0, 2, 1)
    finished = [r.data.tags["content_key"] for r in _runs(uri, "FINISHED")]
    assert sorted(finished) == ["a", "b", "p1"] and "a second run" in outcome.notes[0]


@pytest.mark.parametrize("where", ["artifacts", "database"])
def test_a_full_disk_is_one_line_naming_where_and_how_much(
    uri: str,
    tmp_path: Path,
    where: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Artifacts or the SQLite database on a full disk: DiskFull naming the artifacts'
    folder or the database and the space the runs take, the open runs FAILED, and no
    traceback from MLflow's own logging (it printed two before gradlab's message)."""
    _publish(uri, tmp_path, ["a"])  # the store exists: the error comes from a run
    from mlflow.exceptions import MlflowException

    def full_disk(*args: object, **kwargs: object) -> None:
        if where == "artifacts":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise MlflowException("(sqlite3.OperationalError) database or disk is full")

    method = "log_artifact" if where == "artifacts" else "log_batch"
    monkeypatch.setattr(MlflowClient, method, full_disk)

    with pytest.raises(atomic.DiskFull) as caught:
        _publish(uri, tmp_path, ["a", "b"], parent_key="p2")

    path = tmp_path / ("mlartifacts" if where == "artifacts" else "mlflow.db")
    assert caught.value.path == path and (caught.value.needed or 0) > 0
    assert "make publish" in caught.value.line() and "Traceback" not in capfd.readouterr().err
    assert "RUNNING" not in {r.info.status for r in _runs(uri)}


def test_an_empty_store_says_how_to_fill_it(tmp_path: Path, uri: str) -> None:
    """No store, or one without gradlab's runs: a note naming `make publish` (what `make
    ui` prints first); once published, nothing."""
    before = location.empty(uri, ["test"])
    _publish(uri, tmp_path, ["a"])

    assert before is not None and "make publish" in before and uri in before
    assert location.empty(uri, ["test"]) is None
    assert location.empty(uri, ["other"]) is not None


def test_prune_removes_the_folders_of_runs_a_deleted_store_held(uri: str, tmp_path: Path) -> None:
    """A store replaced by a new one (mlflow.db deleted, published again; a second file
    here, as MLflow keeps the first open in this process): the old run folders stay in
    mlartifacts/ (86 became 172); prune (`mlflow gc`, then the orphans) leaves exactly
    the folders of the runs the new store holds, each removal named."""
    import subprocess

    _publish(uri, tmp_path, ["a", "b"])
    (tmp_path / "new").mkdir()
    new = f"sqlite:///{tmp_path}/new/mlflow.db"
    _publish(new, tmp_path, ["a", "b"])
    folders = lambda: sorted(p.name for p in (tmp_path / "mlartifacts").iterdir())  # noqa: E731
    held = sorted(r.info.run_id for r in _runs(new) if r.info.run_name != "grid")
    assert len(folders()) == 4

    done = list(prune.prune(new, tmp_path, lambda cmd: subprocess.run(cmd, check=True)))

    assert folders() == held
    assert sum(line.startswith("removed mlartifacts/") for line in done) == 2
