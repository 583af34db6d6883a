"""Publish's receipt (reports/published.json), and the check that keeps it true.

The receipt names, per experiment, the content keys of every run one publish made or found
there: no ids, no URI, the same bytes on every machine. DVC tracks it as publish's output
(uncached, git-ignored), so publish runs when what it publishes changed, or when the
receipt is missing, as in a fresh clone.

MLflow is outside DVC's view: after mlflow.db is deleted, a server is wiped or
MLFLOW_TRACKING_URI names another store, the receipt would still say "published" and DVC
would skip publish. So the env stage, which runs first on every `dvc repro`, checks the
store against the receipt (location.stored_keys: one SQLite query or one REST call, no
`import mlflow`) and deletes the receipt when the store lacks a run it names. DVC then
runs publish, which creates exactly what is missing.
"""

import json
from collections.abc import Sequence
from pathlib import Path

from pipeline.tracking import location
from pipeline.tracking.views import HEADLINES

Receipt = dict[str, dict[str, object]]  # part (grid, study) -> experiment, parent, runs


def made(parts: dict[str, tuple[str, Sequence[str]]]) -> Receipt:
    """The receipt of one publish: part -> (its experiment, [the parent's key, *the runs' keys])."""
    return {
        part: {"experiment": experiment, "parent": keys[0], "runs": sorted(keys[1:])}
        for part, (experiment, keys) in parts.items()
    }


def lacking(receipt: Receipt, uri: str) -> dict[str, tuple[int, int]]:
    """Per experiment of the receipt: (how many of the runs it names the store at `uri`
    lacks, how many it names); experiments lacking none are left out.
    location.Unknowable when the store cannot tell."""
    out = {}
    for part in receipt.values():
        experiment, parent = str(part["experiment"]), str(part["parent"])
        named = {parent, *map(str, part["runs"])}  # type: ignore[call-overload]
        # a server answers one search per key: ask for the parent alone, which publish
        # closes last (a wiped or another server is noticed; runs deleted one by one there
        # are filled in by `make publish`)
        asked = {parent} if uri.startswith(("http://", "https://")) else named
        if missing := len(asked - location.finished(uri, experiment, asked)):
            out[experiment] = (missing, len(asked))
    return out


def check(path: Path, uri: str) -> str | None:
    """None when the store at `uri` holds every run the receipt at `path` names, or there is
    no receipt. Otherwise the line to print: the receipt is deleted (so that DVC runs
    publish) when the store lacks runs or the receipt is unreadable, and kept when the store
    cannot be checked now."""
    try:
        missing = lacking(json.loads(path.read_text(encoding="utf-8")), uri)
    except FileNotFoundError:
        return None
    except location.Unknowable as e:
        return f"note: could not check the MLflow store ({e}); `make publish` fills in its gaps"
    except (ValueError, TypeError, KeyError, AttributeError):  # not a receipt of this version
        path.unlink()
        return f"note: {path} is not a receipt this version reads: stage publish runs again"
    if not missing:
        return None
    path.unlink()
    what = ", ".join(f"{n} of the {of} runs of {e!r}" for e, (n, of) in missing.items())
    return f"note: the MLflow store {uri} lacks {what}: stage publish runs to bring them back"


def views(receipt: Receipt, uri: str) -> list[tuple[str, str, str]]:
    """What the links to the receipt's views open: (what, experiment id, view key), for the
    experiments a SQL store at `uri` holds (pipeline.tracking.views)."""
    shown = []
    for part, published in receipt.items():
        found = location.experiment_id(uri, str(published["experiment"]))
        if found is not None and part in HEADLINES:
            shown.append((HEADLINES[part].label, found, str(published["parent"])))
    return shown
