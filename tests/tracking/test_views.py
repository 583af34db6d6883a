"""What the MLflow UI opens on: the experiment tags a publish sets (kind, description, a
saved view of this publish's runs) and the links that open them; checked against a real
SQLite store here, and in a real browser by tests/test_make.py."""

import json
from pathlib import Path

from mlflow import MlflowClient

from pipeline.tracking import location, store, views

IDS = [f"{i:032x}" for i in range(150)]


def test_the_view_keeps_the_runs_given_ranked_by_the_headline_measure() -> None:
    """The saved view: only these runs (the first 100, what the UI loads at once), sorted
    ascending by the measure, the measure and its companions shown, names wide."""
    view = views.view(views.STUDY, IDS)

    assert (
        view["searchFilter"]
        == "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in IDS[:100]) + ")"
    )
    assert (view["orderByKey"], view["orderByAsc"]) == ("metrics.`iqm_steps`", True)
    assert view["selectedColumns"][:2] == ["metrics.`iqm_steps`", "metrics.`success_rate`"]
    assert view["columnWidths"] == {"attributes.`Run Name`": views.NAME_WIDTH}


def test_the_view_draws_histories_on_a_log_scale_and_compares_the_axes_that_matter() -> None:
    """Its charts: parallel coordinates on optimizer, clip, lr and the measure; each history
    on a log scale."""
    charts = {c["type"]: c for c in views.view(views.STUDY, IDS)["compareRunCharts"]}
    lines = [c for c in views.view(views.STUDY, IDS)["compareRunCharts"] if c["type"] == "LINE"]

    assert charts["PARALLEL"]["selectedParams"] == ["optimizer", "clip", "lr"]
    assert charts["PARALLEL"]["selectedMetrics"] == ["iqm_steps"]
    assert [(c["metricKey"], c["scaleType"]) for c in lines] == [("error", "log"), ("loss", "log")]


def test_the_tags_name_the_kind_the_description_and_the_view() -> None:
    """Three experiment tags: a classic ML kind, a description naming the measure and what
    to pick in Compare, and the view as JSON under its key."""
    tags = views.tags(views.GRID, "abc123", IDS[:3])

    assert tags[views.KIND_TAG] == "custom_model_development"
    assert "dist_to_optimum" in tags[views.NOTE_TAG] and "Compare" in tags[views.NOTE_TAG]
    assert json.loads(tags[views.VIEW_TAG + "abc123"]) == views.view(views.GRID, IDS[:3])


def test_the_link_opens_the_view_in_the_classic_ui() -> None:
    """The link names the experiment, the view and the model-training workflow."""
    assert views.link("http://127.0.0.1:5001/", "7", "abc") == (
        "http://127.0.0.1:5001/#/experiments/7/runs"
        "?workflowType=machine_learning&viewStateShareKey=abc"
    )


def test_the_hint_starts_the_ui_on_a_local_store_and_links_each_view() -> None:
    """On SQLite: the command that starts the UI on the port, then one link per view."""
    shown = [("the grid's cells, ranked", "1", "k1"), ("the study's winners, ranked", "2", "k2")]

    lines = location.ui_hint("sqlite:////tmp/mlflow.db", shown, port=5001)

    assert lines[0].startswith("make ui (mlflow ui --backend-store-uri sqlite:////tmp/mlflow.db")
    assert "--port 5001" in lines[0]
    assert lines[2].split() == [
        "the",
        "study's",
        "winners,",
        "ranked:",
        views.link("http://127.0.0.1:5001", "2", "k2"),
    ]
    assert location.ui_hint("http://srv:5000", shown)[0] == "Open:"


def test_a_publish_sets_the_tags_with_the_ids_of_the_runs_it_made_or_found(tmp_path: Path) -> None:
    """store.publish hands `describe` every FINISHED run's id by content key and sets the
    tags it returns; a second publish with nothing new sets them again, idempotent."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    seen: list[dict[str, str]] = []

    def describe(ids: dict[str, str]) -> dict[str, str]:
        seen.append(dict(ids))
        return {"gradlab.test": ",".join(sorted(ids))}

    cells = [store.RunContent(name=f"c{k}", key=k) for k in ("a", "b")]
    for _ in range(2):
        store.publish(
            uri, "views", cells, store.RunContent(name="p", key="p"), tmp_path, iter, describe
        )

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("views")
    runs = {
        r.data.tags["content_key"]: r.info.run_id
        for r in client.search_runs([experiment.experiment_id])
    }
    assert seen == [runs, runs]
    assert experiment.tags["gradlab.test"] == "a,b,p"
    assert location.has_tag(uri, experiment.experiment_id, "gradlab.test")
