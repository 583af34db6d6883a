"""Publish's receipt against a real SQLite store in tmp_path: kept while the store holds
every run it names, deleted (so that DVC runs publish) when the store lacks one, kept with
a note when the store cannot be read."""

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline.tracking import location, receipt, store


def publish(uri: str, tmp_path: Path, keys: list[str], parent: str = "p1") -> list[str]:
    """Runs with content keys `keys` under a parent keyed `parent`, in experiment "test"."""
    cells = [store.RunContent(name=f"cell{i}", key=k) for i, k in enumerate(keys)]
    store.publish(uri, "test", cells, store.RunContent(name="grid", key=parent), tmp_path)
    return [parent, *keys]


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture
def path(uri: str, tmp_path: Path) -> Path:
    """A receipt naming the three runs a publish made in `uri`."""
    made = receipt.made({"grid": ("test", publish(uri, tmp_path, ["a", "b"]))})
    out = tmp_path / "published.json"
    out.write_text(json.dumps(made))
    return out


def test_the_receipt_names_every_run_and_no_machine_detail() -> None:
    """made() lists each part's experiment, parent key and sorted run keys, nothing else."""
    made = receipt.made({"grid": ("gradlab", ["p", "b", "a"]), "study": ("s", ["q"])})

    assert made == {
        "grid": {"experiment": "gradlab", "parent": "p", "runs": ["a", "b"]},
        "study": {"experiment": "s", "parent": "q", "runs": []},
    }


def test_a_store_holding_every_run_keeps_the_receipt(path: Path, uri: str) -> None:
    """Nothing to say and nothing deleted while the store holds every run named."""
    assert receipt.check(path, uri) is None
    assert path.exists()


def test_a_deleted_store_drops_the_receipt_saying_what_it_lacks(path: Path, uri: str) -> None:
    """After mlflow.db is deleted, the receipt goes (DVC then runs publish), said in a line."""
    Path(uri.removeprefix("sqlite:///")).unlink()

    note = receipt.check(path, uri)

    assert not path.exists()
    assert note == (
        f"note: the MLflow store {uri} lacks 3 of the 3 runs of 'test': "
        "stage publish runs to bring them back"
    )


def test_one_deleted_run_drops_the_receipt(path: Path, uri: str) -> None:
    """A run deleted in the UI (lifecycle 'deleted') counts as lacking."""
    client = MlflowClient(uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("test").experiment_id], "tags.content_key = 'b'"
    )
    client.delete_run(run.info.run_id)

    note = receipt.check(path, uri)

    assert note is not None and "lacks 1 of the 3 runs of 'test'" in note
    assert not path.exists()


def test_another_store_drops_the_receipt(path: Path, tmp_path: Path) -> None:
    """MLFLOW_TRACKING_URI naming another store: it lacks them all, so publish runs."""
    other = f"sqlite:///{tmp_path}/other.db"
    publish(other, tmp_path, ["z"], parent="p9")

    assert "lacks 3 of the 3 runs" in str(receipt.check(path, other))
    assert not path.exists()


def test_a_store_that_cannot_be_read_keeps_the_receipt_with_a_note(path: Path) -> None:
    """A misspelt URI cannot tell what it holds: the receipt stays, a note names why."""
    note = receipt.check(path, "htp://127.0.0.1:5000")

    assert note is not None and note.startswith("note: could not check the MLflow store (")
    assert "unknown scheme 'htp'" in note and "make publish" in note
    assert path.exists()


@pytest.mark.parametrize("text", ["{not json", '{"grid": {"experiment": "test", "parent": "p"}}'])
def test_a_receipt_of_another_version_is_dropped(path: Path, uri: str, text: str) -> None:
    """A receipt this version cannot read (a parent key only, broken JSON) is dropped."""
    path.write_text(text)

    assert "is not a receipt this version reads" in str(receipt.check(path, uri))
    assert not path.exists()


def test_no_receipt_no_note(tmp_path: Path, uri: str) -> None:
    """Without a receipt (a fresh clone) there is nothing to check: publish runs anyway."""
    assert receipt.check(tmp_path / "published.json", uri) is None


def test_finished_answers_for_the_keys_asked_only(path: Path, uri: str) -> None:
    """location.finished: those of the keys asked that the store holds, none of the others."""
    assert location.finished(uri, "test", {"a", "zz", "p1"}) == {"a", "p1"}
    assert location.finished(uri, "nothing", {"a"}) == set()
