"""The local store's artifacts (mlartifacts/) pruned: runs in MLflow's trash deleted for
good (`mlflow gc`: the runs publish replaced), and the folders of runs the store does not
hold any more (deleting mlflow.db and publishing again leaves the old ones behind: 86
folders became 172). `make prune` runs it; nothing is removed without being named."""

import re
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.tracking import lock
from pipeline.tracking.location import TrackingError

RUN_ID = re.compile(r"^[0-9a-f]{32}$")  # an MLflow run's folder under its experiment's


def orphans(database: Path, artifacts: Path) -> list[Path]:
    """The run folders under `artifacts` (<run id>/, as publish's experiments lay them
    out, or <experiment id>/<run id>/, MLflow's default) whose run `database` does not
    hold, in any state (deleted ones included)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        held = {run for (run,) in db.execute("SELECT run_uuid FROM runs")}
    top = [p for p in artifacts.iterdir() if p.is_dir()] if artifacts.is_dir() else []
    runs = [p for p in top if RUN_ID.match(p.name)]
    runs += [r for p in top if p.name.isdigit() for r in p.iterdir() if RUN_ID.match(r.name)]
    return sorted(run for run in runs if run.is_dir() and run.name not in held)


def prune(uri: str, root: Path, run: Callable[[list[str]], None]) -> Iterator[str]:
    """Empty MLflow's trash (`run` runs `mlflow gc`), then remove the orphaned run folders
    of root/mlartifacts; what was done, as it is done. TrackingError for a store that is
    not a local SQLite database, or that does not exist (nothing to compare with)."""
    database = lock.sqlite_path(uri)
    if database is None:
        raise TrackingError(
            f"{uri}: not a local SQLite store; on a tracking server run `mlflow gc` there"
        )
    if not database.is_file():
        raise TrackingError(
            f"{database}: no store here, so nothing tells which artifact folders are in use; "
            "`make publish` fills it, or remove mlartifacts/ yourself if you mean to"
        )
    run([sys.executable, "-m", "mlflow", "gc", "--backend-store-uri", uri, "--tracking-uri", uri])
    yield "deleted for good the runs in MLflow's trash (mlflow gc)"
    for folder in orphans(database, root / "mlartifacts"):
        shutil.rmtree(folder)
        yield f"removed {folder.relative_to(root)}: its run is not in {database.name}"
