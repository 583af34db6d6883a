"""Where the tracking store is, and what can be known of it before `import mlflow` (1.4 s):
the URI, whether MLflow 3 can use it, whether a server answers, the content keys a store
already holds (a SQLite file read directly, a server asked through its REST API), and how
to open its UI."""

import base64
import json
import os
import sqlite3
from collections.abc import Collection
from pathlib import Path
from urllib.parse import quote, urlparse

from pipeline.tracking import views

SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https")
CONTENT_KEY = "content_key"  # the tag every gradlab run carries: a digest of its inputs
PAYLOAD_TAG = "gradlab.payload"  # a digest of what a run holds (store.RunContent.payload)
OWNER_TAG = "gradlab.host"  # the host of the process that opened a run


class TrackingError(RuntimeError):
    """Publishing failed for a reason the user can fix; the message says how."""


def root() -> Path:
    """The repository a stage runs for: DVC_ROOT (a queued experiment runs in a temporary
    copy, and DVC_ROOT names the repository it came from), else the working directory."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd())


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


class Unknowable(Exception):
    """What a store holds cannot be told without MLflow: an unusable URI, a schema this code
    does not know, a server or database that does not answer."""


# The two queries of a SQL store, in MLflow's schema (the same in SQLite and server databases)
EXPERIMENT_SQL = (
    "SELECT experiment_id FROM experiments WHERE name = :name AND lifecycle_stage = 'active'"
)
KEYS_SQL = (
    "SELECT t.value FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
    "WHERE r.experiment_id = :id AND r.lifecycle_stage = 'active' "
    "AND r.status = 'FINISHED' AND t.key = :key"
)


def experiment_id(uri: str, experiment: str) -> str | None:
    """The id of a SQL store's experiment, or None (no such experiment, or unknown)."""
    try:
        found = _sql_keys(uri, experiment)
    except Unknowable:
        return None
    return found[0] if found else None


def has_tag(uri: str, experiment_id: str, key: str) -> bool:
    """Whether a SQLite store's experiment has the tag `key` (False when it cannot tell)."""
    path = Path(uri.removeprefix("sqlite:///"))
    if not uri.startswith("sqlite:///") or not path.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            query = "SELECT 1 FROM experiment_tags WHERE experiment_id = ? AND key = ?"
            return db.execute(query, (experiment_id, key)).fetchone() is not None
    except sqlite3.Error:
        return False


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


def finished(uri: str, experiment: str, keys: Collection[str]) -> set[str]:
    """Those of `keys` that a FINISHED run of `experiment` carries in the store at `uri`
    (none when the store or the experiment does not exist); Unknowable when that cannot be
    told. Without MLflow: a SQL store answers for every key in one query (a SQLite file read
    directly, another database through SQLAlchemy); a server is asked one search per key (a
    search listing every run takes seconds there), so ask it about few."""
    try:
        check(uri)
    except TrackingError as e:
        raise Unknowable(str(e)) from None
    if uri.startswith(("http://", "https://")):
        return {key for key in keys if _server_has(uri, experiment, key)}
    found = _sql_keys(uri, experiment)
    return set(keys) & found[1] if found else set()


def _sql_keys(uri: str, experiment: str) -> tuple[str, set[str]] | None:
    """(experiment id, content keys of FINISHED runs) of a SQL store, or None when the store
    or the experiment does not exist."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            return None
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                row = db.execute(EXPERIMENT_SQL, {"name": experiment}).fetchone()
                found = None if row is None else db.execute(KEYS_SQL, _keys_of(row[0])).fetchall()
        except sqlite3.Error as e:
            raise Unknowable(f"{path}: {e}") from None
    else:
        try:
            import sqlalchemy

            engine = sqlalchemy.create_engine(uri)
            try:
                with engine.connect() as db:
                    row = db.execute(sqlalchemy.text(EXPERIMENT_SQL), {"name": experiment}).first()
                    query = sqlalchemy.text(KEYS_SQL)
                    found = None if row is None else list(db.execute(query, _keys_of(row[0])))
            finally:
                engine.dispose()
        except Exception as e:  # a missing driver, a refused login, no such table: unknown
            first = str(e).splitlines()[0] if str(e) else ""  # not the URI: it may hold a password
            raise Unknowable(f"the tracking database: {type(e).__name__}: {first}") from None
    return None if row is None or found is None else (str(row[0]), {k for (k,) in found})


def _keys_of(experiment_id: object) -> dict[str, object]:
    return {"id": experiment_id, "key": CONTENT_KEY}


def _server_has(uri: str, experiment: str, key: str) -> bool:
    """Whether a FINISHED run of `experiment` on a tracking server carries `key` (REST API
    2.0, authenticated as MLflow's client is)."""
    import urllib.error

    base = f"{uri.rstrip('/')}/api/2.0/mlflow"
    try:
        found = _rest(f"{base}/experiments/get-by-name?experiment_name={quote(experiment)}")
        query = f"tags.{CONTENT_KEY} = '{key}' and attributes.status = 'FINISHED'"
        body = {"experiment_ids": [found["experiment"]["experiment_id"]], "filter": query}
        page = _rest(f"{base}/runs/search", body | {"max_results": 1})
    except urllib.error.HTTPError as e:
        if e.code == 404:  # RESOURCE_DOES_NOT_EXIST: no such experiment
            return False
        raise Unknowable(f"the MLflow server at {uri} answered {e.code} {e.reason}") from None
    except (OSError, ValueError, KeyError) as e:  # URLError is an OSError
        raise Unknowable(f"no answer from the MLflow server at {uri} ({e})") from None
    return bool(page.get("runs"))


def _rest(url: str, body: dict[str, object] | None = None) -> dict:  # type: ignore[type-arg]
    """The JSON a tracking server answers to a GET (or a POST of `body`), authenticated as
    MLflow's client is: MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and _PASSWORD."""
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    elif user := os.environ.get("MLFLOW_TRACKING_USERNAME"):
        pair = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def ui_hint(uri: str, shown: list[tuple[str, str, str]], port: int = 5000) -> list[str]:
    """How to open each view of `shown` (what, experiment id, view key): the links, after
    the command starting the UI on a local store (`make ui PORT=...` prints them again)."""
    if uri.startswith(("http://", "https://")):
        base, start = uri, "Open"
    else:
        base = f"http://127.0.0.1:{port}"
        start = (
            f"make ui (mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port {port}), "
            "then open"
        )
    width = max(len(what) for what, _, _ in shown)
    links = [f"  {what + ':':<{width + 1}} {views.link(base, i, key)}" for what, i, key in shown]
    return [f"{start}:", *links]


def reachable(uri: str) -> None:
    """Fail in seconds, not minutes, when an HTTP tracking server is down."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

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
