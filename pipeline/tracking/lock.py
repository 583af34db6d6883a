"""One publisher at a time per tracking store, whichever checkout or host it runs from.

- A SQLite store: a file lock (flock) beside the database, held from before MLflow opens
  it (two processes creating a fresh database race in its schema migration: `table
  experiments already exists`) to the end of the publish. The kernel releases it when its
  holder dies, however it dies.
- Any other store (an `mlflow server`, a database URI): a claim run in the experiment.
  A publisher creates its claim, then lists the claims: alone, it holds the store (any
  later claimant sees its claim and backs off); otherwise it withdraws and retries after
  a random pause, so two that claim at once do not retry in step. A claim whose owner is
  gone (its pid on this host) or silent for CLAIM_STALE_S (the holder refreshes a
  heartbeat tag while it publishes) is withdrawn by the next claimant.

Every run a holder creates carries the holder's id (LOCK_TAG): a RUNNING run whose id is
not the current holder's was left by a publish that no longer holds the store.
"""

import fcntl
import os
import random
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.run import interrupt
from pipeline.tracking.location import OWNER_TAG, TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient

HOST_TAG, PID_TAG = OWNER_TAG, "gradlab.pid"  # the process that opened a run
LOCK_TAG = "gradlab.lock"  # the id of the store lock held while the run was opened
CLAIM_TAG, HEARTBEAT_TAG = "gradlab.claim", "gradlab.heartbeat"
CLAIM_NAME = "gradlab-publish-lock"  # the claim run, visible while a publish holds the store
CLAIM_STALE_S = 300  # a claim silent this long belongs to a publish that is gone
HEARTBEAT_S = 15  # how often the holder refreshes its claim
WAIT_S = 1800  # the longest a publisher waits for another one


def owner() -> dict[str, str]:
    """The tags naming this process as a run's owner."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def alive(host: str | None, pid: str | None) -> bool | None:
    """Whether the process `pid` on `host` runs; None when this host cannot tell."""
    if host != socket.gethostname() or not (pid or "").isdigit():
        return None
    try:
        os.kill(int(pid), 0)  # type: ignore[arg-type]
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Holder:
    """The lock this process holds: its id, and its claim run (none for a file lock)."""

    id: str
    client: "MlflowClient | None" = None
    claim: str | None = None
    beat: float = field(default_factory=time.monotonic)

    def heartbeat(self) -> None:
        """Refresh the claim (at most every HEARTBEAT_S): a long publish stays the holder."""
        if self.client is None or self.claim is None:
            return
        if time.monotonic() - self.beat >= HEARTBEAT_S:
            self.client.set_tag(self.claim, HEARTBEAT_TAG, str(time.time()))
            self.beat = time.monotonic()


def retire(client: "MlflowClient", run_id: str, status: str) -> None:
    """End a run with `status` and delete it (restorable: `mlflow runs restore`); a user
    who may not delete runs (MLflow's EDIT permission) leaves it ended."""
    from mlflow.exceptions import MlflowException

    client.set_terminated(run_id, status)
    with suppress(MlflowException):
        client.delete_run(run_id)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI, else None."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


@contextmanager
def file_lock(uri: str) -> Iterator[Holder | None]:
    """Hold the file lock of a SQLite store (None for other stores: see claim)."""
    database = sqlite_path(uri)
    if database is None:
        yield None
        return
    path = database.with_name(database.name + "-gradlab.lock")
    try:
        handle = open(path, "a")  # noqa: SIM115  # held open until the lock is released
    except OSError as e:
        raise TrackingError(f"cannot open the lock file {path} beside the store ({e})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"publish: waiting for another publish to {uri} to finish", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)  # a signal interrupts the wait (PEP 475)
        try:
            yield Holder(uuid.uuid4().hex)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _claims(client: "MlflowClient", experiment_id: str) -> list:
    runs = client.search_runs(
        [experiment_id], f"tags.`{CLAIM_TAG}` = '1' and attributes.status = 'RUNNING'"
    )
    return list(runs)


def _stale(run: object, now: float) -> bool:
    tags = run.data.tags  # type: ignore[attr-defined]
    if alive(tags.get(HOST_TAG), tags.get(PID_TAG)) is False:
        return True
    last = max(run.info.start_time / 1000, float(tags.get(HEARTBEAT_TAG, 0) or 0))  # type: ignore[attr-defined]
    return now - last > CLAIM_STALE_S


@contextmanager
def claim(client: "MlflowClient", experiment_id: str, held: Holder | None) -> Iterator[Holder]:
    """Hold the store through a claim run in the experiment, unless `held` (a file lock)
    already does; TrackingError after WAIT_S of waiting."""
    if held is not None:
        yield held
        return
    start, said, pause = time.monotonic(), False, 0.2
    while True:
        tags = {**owner(), CLAIM_TAG: "1", HEARTBEAT_TAG: str(time.time())}
        mine = str(client.create_run(experiment_id, tags=tags, run_name=CLAIM_NAME).info.run_id)
        others = [r for r in _claims(client, experiment_id) if r.info.run_id != mine]
        now = time.time()
        for run in [r for r in others if _stale(r, now)]:
            retire(client, run.info.run_id, "KILLED")  # a claim whose publish is gone
        live = [r for r in others if not _stale(r, now)]
        if not live:
            break
        retire(client, mine, "KILLED")
        if not said:
            tags = live[0].data.tags
            print(
                f"publish: waiting for the publish of {tags.get(HOST_TAG)} (pid "
                f"{tags.get(PID_TAG)}) to this store to finish",
                file=sys.stderr,
            )
            said = True
        if time.monotonic() - start > WAIT_S:
            raise TrackingError(
                f"another publish has held this store for over {WAIT_S} s; "
                "run `make publish` again once it is done"
            )
        interrupt.check()
        time.sleep(random.uniform(pause / 2, pause))  # not for secrets
        pause = min(pause * 2, 5.0)
    try:
        yield Holder(mine, client, mine)
    finally:
        retire(client, mine, "FINISHED")
