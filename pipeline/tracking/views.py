"""What the MLflow UI shows first: the experiment tags gradlab sets so that the printed link
opens on the answer, read by MLflow 3.17's UI.

- `mlflow.experimentKind = custom_model_development`: a model-training experiment, not a
  GenAI one (whose pages show traces and evaluations). MLflow 3.17's UI reads it only with
  a feature flag it ships off; otherwise the kind follows the browser's choice between
  "GenAI" and "Model training" (GenAI until the user picks), so the link also asks for the
  classic view (`workflowType=machine_learning`), and the description says to pick "Model
  training" once for the run pages.
- `mlflow.note.content`: the experiment's description: what a run is, which columns say
  what, which three to pick in Compare.
- `mlflow.sharedViewState.<key>`: a saved view of the runs table, what the UI's own
  "Share" button writes, opened by `?viewStateShareKey=<key>`: the runs of this publish
  only (by id: runs are shared between publishes, so no tag can say which are current),
  sorted by the headline measure, its columns shown, names wide enough to read, and the
  charts: parallel coordinates on the axes that matter, histories on a log scale (errors
  and losses fall by orders of magnitude: on a linear axis they reach 0 by step 10).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
NOTE_TAG = "mlflow.note.content"
VIEW_TAG = "mlflow.sharedViewState."
ROWS = 100  # the UI loads 100 runs, then offers "Load more": the view holds at most these
NAME_WIDTH = 280  # px: the run name column (190 cut `noisy-mse-nesterov-none` short)
SECTION = "gradlab"  # the charts' section


@dataclass(frozen=True)
class Headline:
    """How an experiment's runs are read: the measure that ranks them (lower is better),
    the columns beside it, the histories, the axes of Compare's parallel coordinates."""

    label: str  # what the link opens
    measure: str
    metrics: tuple[str, ...]  # shown after the measure
    params: tuple[str, ...]  # shown after the metrics
    histories: tuple[str, ...]  # drawn per step, log scale
    compare: tuple[str, ...]  # parallel coordinates: params, then the measure
    note: str  # what the runs are, in Markdown


def _column(kind: str, name: str) -> str:
    return f"{kind}.`{name}`"  # the UI's column id (makeCanonicalSortKey)


def _line(metric: str) -> dict[str, object]:
    """A line chart of one history, log scale (a serialized RunsChartsLineCardConfig)."""
    return {
        "uuid": f"{SECTION}-{metric}", "type": "LINE", "runsCountToCompare": ROWS,
        "metricSectionId": SECTION, "deleted": False, "isGenerated": False,
        "displayName": f"{metric} (log scale)", "metricKey": metric,
        "selectedMetricKeys": [metric], "lineSmoothness": 0, "xAxisScaleType": "linear",
        "scaleType": "log", "xAxisKey": "step", "selectedXAxisMetricKey": "",
        "yAxisKey": "metric", "yAxisExpressions": [], "ignoreOutliers": False,
        "useGlobalXaxisKey": True, "useGlobalLineSmoothing": True,
        "range": {"xMin": None, "xMax": None, "yMin": None, "yMax": None},
    }  # fmt: skip


def view(headline: Headline, run_ids: Sequence[str]) -> dict[str, object]:
    """The saved view of `run_ids` (the first ROWS), ranked by the headline measure."""
    ids = ", ".join(f"'{run_id}'" for run_id in run_ids[:ROWS])
    columns = [_column("metrics", m) for m in (headline.measure, *headline.metrics)]
    columns += [_column("params", p) for p in headline.params]
    parallel = {
        "uuid": f"{SECTION}-compare", "type": "PARALLEL", "runsCountToCompare": ROWS,
        "metricSectionId": SECTION, "deleted": False, "isGenerated": False,
        "displayName": "Compare", "selectedParams": list(headline.compare),
        "selectedMetrics": [headline.measure], "showAllRuns": True,
    }  # fmt: skip
    return {
        "searchFilter": f"attributes.run_id IN ({ids})",
        "orderByKey": _column("metrics", headline.measure),
        "orderByAsc": True,
        "selectedColumns": columns,
        "columnOrder": [_column("attributes", "Run Name"), *columns],
        "columnWidths": {_column("attributes", "Run Name"): NAME_WIDTH},
        "compareRunSections": [
            {"uuid": SECTION, "name": "gradlab", "display": True, "isReordered": False}
        ],
        "compareRunCharts": [parallel, *map(_line, headline.histories)],
        "isAccordionReordered": True,  # these charts first, in this order
        "runsHiddenMode": "SHOW_ALL",  # the charts draw every run of the view, not 10
    }


def tags(headline: Headline, key: str, run_ids: Sequence[str]) -> dict[str, str]:
    """The experiment's tags: its kind, its description, and the view saved as `key`."""
    return {
        KIND_TAG: KIND,
        NOTE_TAG: headline.note,
        VIEW_TAG + key: json.dumps(view(headline, run_ids), separators=(",", ":")),
    }


def link(base: str, experiment_id: str, key: str) -> str:
    """The URL that opens the view saved as `key`, in the classic (model training) UI."""
    query = f"workflowType=machine_learning&viewStateShareKey={key}"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


CLASSIC = (
    "A run's page titled *Evaluations*? Pick **Model training** (top left) once: the UI "
    "remembers it in this browser."
)
GRID = Headline(
    label="the grid's cells, ranked",
    measure="dist_to_optimum",
    metrics=("final_loss", "clip_fraction", "diverged"),
    params=("lr",),
    histories=("loss", "grad_norm"),
    compare=("optimizer", "clip", "loss"),
    note=(
        "**gradlab's grid**: one run per cell (`<loss>-<optimizer>-<clip>`), the tutorial's "
        "`nn.Linear(1, 1)` trained by `torch.optim`, nested under one parent per grid "
        "(the ranking, the walkthrough, the plots).\n\n"
        "The link `make repro` prints opens this grid's cells ranked by **dist_to_optimum** "
        "(distance of the trained line to y = 2x, lower is better) beside `final_loss`, "
        "`clip_fraction` (share of steps clipped) and `diverged`. Histories: `loss`, "
        "`grad_norm` (before clipping), `weight`, `bias`, ... per step (charts: log scale).\n\n"
        "**Compare** (select runs, then Compare, then Parallel coordinates): pick the params "
        "`optimizer`, `clip`, `loss` and the metric `dist_to_optimum`.\n\n" + CLASSIC
    ),
)
STUDY = Headline(
    label="the study's winners, ranked",
    measure="iqm_steps",
    metrics=("success_rate", "first_touch_median", "tuned_lr"),
    params=(),
    histories=("error", "loss"),
    compare=("optimizer", "clip", "lr"),
    note=(
        "**gradlab's study**: one run per configuration "
        "(`<scenario>-<loss>-<optimizer>-<clip>`) at its tuned learning rate, nested under "
        "one parent per study (the HTML report and every table).\n\n"
        "The link `make repro` prints opens the winners (each scenario and loss's best "
        "configuration; a tie: each) ranked by **iqm_steps**: the interquartile mean over "
        "the reporting seeds of the sustained steps to target, the first step from which a "
        "run stays within tol of the loss's minimisers (lower is better; never: no value, "
        "named in the `never` tag), beside `success_rate`, `first_touch_median` (the first "
        "step within tol, which a run may leave again) and `tuned_lr`. Histories: `error` "
        "and `loss`, medians over the reporting seeds (charts: log scale).\n\n"
        "**Compare** (select runs, then Compare, then Parallel coordinates): pick the params "
        "`optimizer`, `clip`, `lr` and the metric `iqm_steps`.\n\n" + CLASSIC
    ),
)
HEADLINES = {"grid": GRID, "study": STUDY}  # the parts of publish's receipt
