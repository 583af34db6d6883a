"""Where the tracking store is, and what can be known of it before `import mlflow` (1.4 s):
the URI, whether MLflow 3 can use it, whether a server answers, the content keys a SQLite
store already holds (read directly), and how to open its UI."""

import os
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https")
CONTENT_KEY = "content_key"  # the tag every gradlab run carries: a digest of its inputs
PAYLOAD_TAG = "gradlab.payload"  # a digest of what a run holds (store.RunContent.payload)
OWNER_TAG = "gradlab.host"  # the host of the process that opened a run


class TrackingError(RuntimeError):
    """Publishing failed for a reason the user can fix; the message says how."""


def default_uri(root: Path) -> str:
    """MLFLOW_TRACKING_URI, else the SQLite store at the repository root (absolute:
    queued DVC experiments run in a temporary copy that is deleted afterwards)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root.resolve()}/mlflow.db"


def check(uri: str) -> None:
    """TrackingError unless `uri` names a tracking store MLflow 3 can use."""
    scheme = urlparse(uri).scheme
    if scheme in ("", "file"):
        raise TrackingError(
            f"MLFLOW_TRACKING_URI={uri!r}: the ./mlruns file store is deprecated and refused "
            "by MLflow >= 3.13; use sqlite:///<absolute path>/mlflow.db or an http(s):// server"
        )
    if scheme.split("+")[0] not in SCHEMES:
        raise TrackingError(
            f"MLFLOW_TRACKING_URI={uri!r}: unknown scheme {scheme!r}; "
            f"allowed: {', '.join(SCHEMES)} (e.g. http://127.0.0.1:5000)"
        )


def published_keys(uri: str, experiment: str) -> tuple[str, set[str]] | None:
    """(experiment id, content keys of FINISHED runs) read straight from a SQLite store,
    or None when that is not possible. Lets a no-op publish skip `import mlflow` (~1.4 s)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    if not path.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute(
                "SELECT experiment_id FROM experiments "
                "WHERE name = ? AND lifecycle_stage = 'active'",
                (experiment,),
            ).fetchone()
            if row is None:
                return None
            keys = db.execute(
                "SELECT t.value FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
                "WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active' "
                "AND r.status = 'FINISHED' AND t.key = ?",
                (row[0], CONTENT_KEY),
            ).fetchall()
    except sqlite3.Error:
        return None  # schema moved or file locked: let MLflow answer
    return str(row[0]), {k for (k,) in keys}


Holdings = tuple[str, dict[str, list[str | None]], bool]


def holdings(uri: str, experiment: str) -> Holdings | None:
    """(experiment id, the payload tag of each FINISHED run by content key, whether a run of
    gradlab's is RUNNING) read straight from a SQLite store, or None when that is not
    possible. Lets a publish with nothing to do skip `import mlflow` (~1.4 s)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    if not path.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute(
                "SELECT experiment_id FROM experiments "
                "WHERE name = ? AND lifecycle_stage = 'active'",
                (experiment,),
            ).fetchone()
            if row is None:
                return None
            finished = db.execute(
                "SELECT k.value, p.value FROM runs r "
                "JOIN tags k ON k.run_uuid = r.run_uuid AND k.key = ? "
                "LEFT JOIN tags p ON p.run_uuid = r.run_uuid AND p.key = ? "
                "WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active' "
                "AND r.status = 'FINISHED'",
                (CONTENT_KEY, PAYLOAD_TAG, row[0]),
            ).fetchall()
            running = db.execute(
                "SELECT count(*) FROM runs r JOIN tags h ON h.run_uuid = r.run_uuid "
                "AND h.key = ? WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active' "
                "AND r.status = 'RUNNING'",
                (OWNER_TAG, row[0]),
            ).fetchone()[0]
    except sqlite3.Error:
        return None  # schema moved or file locked: let MLflow answer
    found: dict[str, list[str | None]] = {}
    for key, payload in finished:
        found.setdefault(key, []).append(payload)
    return str(row[0]), found, bool(running)


def empty(uri: str, experiments: list[str]) -> str | None:
    """A note when the SQLite store at `uri` holds no run of `experiments` (mlflow.db
    deleted, or never published to): the UI would open on nothing. None otherwise."""
    if not uri.startswith("sqlite:///"):
        return None
    held = {name: holdings(uri, name) for name in experiments}
    if any(found and found[1] for found in held.values()):
        return None
    return (
        f"note: {uri} holds no runs of {' or '.join(experiments)}: `make publish` fills it "
        "from the pipeline's outputs, without retraining"
    )


def say_if_empty(root: Path | None = None) -> None:
    """Print `empty`'s note for the local store of `root` (the working directory), with
    the experiments params.yaml names (`make ui` calls this first)."""
    from pipeline import params

    folder = root or Path.cwd()
    p = params.load(folder / "params.yaml").publish
    uri = f"sqlite:///{folder.resolve()}/mlflow.db"
    if note := empty(uri, [p.experiment, p.study_experiment]):
        print(note)


def ui_hint(uri: str, experiment_id: str) -> str:
    """How to open the experiment's runs page."""
    if uri.startswith(("http://", "https://")):
        return f"Open {uri.rstrip('/')}/#/experiments/{experiment_id}/runs"
    return (
        f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000\n"
        f"then open http://127.0.0.1:5000/#/experiments/{experiment_id}/runs"
    )


def reachable(uri: str) -> None:
    """Fail in seconds, not minutes, when an HTTP tracking server is down."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5).close()
    except urllib.error.HTTPError:
        return  # it answered: reachable (auth problems are reported by the first call)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {uri} ({reason}); start it or fix "
            "MLFLOW_TRACKING_URI, then run `make publish` (the DVC outputs are kept)"
        ) from None


def write_ahead(dbapi_connection: object, _record: object) -> None:
    """Each SQLite connection MLflow opens: write-ahead log, fsync at checkpoints only.
    MLflow commits every call (3+ per run) and SQLite's default fsyncs each commit: 40-60
    ms per run here, 10 ms in WAL mode. The store cannot be corrupted this way; an OS crash
    may lose the last commits, which the next `make publish` fills in (runs are keyed by
    content). WAL needs a local disk: it is refused on network file systems."""
    if type(dbapi_connection).__module__ == "sqlite3":
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
