"""What an experiment already holds, set against what publish would make, under the store's
lock (pipeline.tracking.lock): which content keys have their run, which runs are wrong or
twice there, which were left RUNNING by a publish that is gone.

A FINISHED run holds its content when its PAYLOAD_TAG equals the digest of what publish
would log now (RunContent.payload). A run published before that tag existed is read back
(params and every metric point) once: if it holds the content it gets the tag, else it is
replaced. A replaced run (wrong content, or a second run of a key) is tagged with why and
deleted (restorable: `mlflow runs restore`), or marked FAILED where the user may not
delete runs; either way it is no longer a FINISHED run of its key.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.files.message import cut
from pipeline.tracking import lock
from pipeline.tracking.location import CONTENT_KEY, PAYLOAD_TAG

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from pipeline.tracking.store import RunContent

REPLACED_TAG = "gradlab.replaced"  # why a run was replaced
CLOSED_TAG = "gradlab.closed"  # why a run left RUNNING was closed
STALE_AFTER_S = 3600  # a RUNNING run older than this belongs to a publish that is gone


def runs(client: "MlflowClient", experiment_id: str, where: str) -> Iterator["Run"]:
    """Every active run of the experiment matching the search filter `where`."""
    token = None
    while True:
        page = client.search_runs([experiment_id], where, max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def stale(run: "Run", holder: str, now: float) -> str | None:
    """Why a RUNNING run of gradlab's was left by a publish that is gone, or None: its lock
    is not the one held now, its process on this host is gone, or it is too old."""
    tags = run.data.tags
    if tags.get(lock.CLAIM_TAG) or tags.get(lock.LOCK_TAG) == holder:
        return None  # a claim (the lock's business), or one of ours
    if (held := tags.get(lock.LOCK_TAG)) is not None:
        return f"opened under store lock {held[:8]}, no longer held"
    if lock.alive(tags.get(lock.HOST_TAG), tags.get(lock.PID_TAG)) is False:
        return f"its process {tags.get(lock.PID_TAG)} on this host is gone"
    if now - run.info.start_time / 1000 > STALE_AFTER_S:
        return f"RUNNING for over {STALE_AFTER_S // 60} minutes"
    return None


def close_stale(client: "MlflowClient", experiment_id: str, holder: str) -> list[str]:
    """Mark KILLED every RUNNING run of gradlab's that a gone publish left; what was closed."""
    now, closed = time.time(), []
    where = f"attributes.status = 'RUNNING' and tags.`{lock.HOST_TAG}` != ''"
    for run in runs(client, experiment_id, where):
        if (why := stale(run, holder, now)) is not None:
            client.set_tag(run.info.run_id, CLOSED_TAG, why)
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(
                f"closed run {run.info.run_name} ({run.info.run_id[:8]}), left RUNNING: {why}"
            )
    return closed


def difference(client: "MlflowClient", run: "Run", content: "RunContent") -> str | None:
    """The first way the run's params or metrics differ from `content`, or None."""
    for name, text in sorted(content.params.items()):
        if run.data.params.get(name) != text:
            return f"param {name} is {run.data.params.get(name)!r} in MLflow, {text!r} here"
    wanted: dict[str, dict[int, float]] = {}
    for key, value, step in content.metrics:
        wanted.setdefault(key, {})[step] = value
    if extra := sorted(set(run.data.metrics) - set(wanted)):
        return f"metric {extra[0]} is in MLflow only"
    for key, points in sorted(wanted.items()):
        stored = {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
        for step in sorted(points.keys() | stored.keys()):
            if stored.get(step) != points.get(step):
                return (
                    f"{key} at step {step} is {stored.get(step)} in MLflow, {points.get(step)} here"
                )
    return None


@dataclass
class Ledger:
    """The experiment's FINISHED runs by content key, and what settling them did."""

    by_key: dict[str, list["Run"]]
    notes: list[str] = field(default_factory=list)
    replaced: int = 0

    @classmethod
    def read(cls, client: "MlflowClient", experiment_id: str) -> "Ledger":
        found: dict[str, list[Run]] = {}
        for run in runs(client, experiment_id, "attributes.status = 'FINISHED'"):
            if (key := run.data.tags.get(CONTENT_KEY)) is not None:
                found.setdefault(key, []).append(run)
        return cls(found)

    def settle(self, client: "MlflowClient", content: "RunContent") -> str | None:
        """The one FINISHED run that holds `content`, or None; every other FINISHED run
        of its key is replaced (wrong content, or a second one)."""
        kept = None
        for run in sorted(self.by_key.get(content.key, []), key=_age):
            tag = run.data.tags.get(PAYLOAD_TAG)
            why = None if tag == content.payload else "its content differs"
            if tag is None:  # published before payload tags: read it back, once
                why = difference(client, run, content)
                if why is None:
                    client.set_tag(run.info.run_id, PAYLOAD_TAG, content.payload)
            elif why is not None:
                why = difference(client, run, content) or why
            if why is None and kept is None:
                kept = str(run.info.run_id)
                continue
            why = why or f"a second run of the key (run {kept})"
            client.set_tag(run.info.run_id, REPLACED_TAG, cut(why, 500))
            lock.retire(client, run.info.run_id, "FAILED")
            self.replaced += 1
            self.notes.append(f"replaced run {run.info.run_name} ({run.info.run_id[:8]}): {why}")
        return kept


def _age(run: "Run") -> tuple[int, str]:
    return run.info.start_time, str(run.info.run_id)


def adoptable(client: "MlflowClient", experiment_id: str, key: str) -> str | None:
    """A run of `key` that a publish left unfinished (KILLED, FAILED, closed), the latest:
    a resumed publish puts its runs under it instead of a second parent."""
    left = [
        r
        for r in runs(client, experiment_id, f"tags.{CONTENT_KEY} = '{key}'")
        if r.info.status in ("KILLED", "FAILED") and REPLACED_TAG not in r.data.tags
    ]
    return str(max(left, key=_age).info.run_id) if left else None
