"""The study's MLflow runs, built from the study's outputs: one run per configuration at
its tuned learning rate, nested under one parent per study that holds the report and
the tables. At most one run per configuration (504 by default, well under the ~1,000 the
MLflow UI handles), never one per cell.

Keys: a run's content key digests what it is made of, and nothing else: its configuration
and settings (the params), its measures and histories (the metrics), and its cells (every
column of its reporting cells). A change elsewhere in the study (another configuration,
the report, the grid) leaves its key alone, so it gets no new run. The parent's key is a
digest of the files it holds and of its runs' keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.clips import CLIPS
from pipeline.engine.cells import COLUMNS
from pipeline.files.digest import combine, sha
from pipeline.losses import CLASS_LOSSES, LOSSES
from pipeline.optimizers import OPTIMIZERS
from pipeline.study.configuration import CONFIG
from pipeline.tracking import store

if TYPE_CHECKING:
    import pandas as pd

MEASURES = (  # summary.csv's measures, each a metric of its configuration's run
    "tuned_lr", "tune_median", "tunability", "iqm_steps", "iqm_lo", "iqm_hi",
    "median_steps", "median_lo", "median_hi", "p90_steps", "p99_steps", "success_rate",
    "first_touch_median", "touched_rate", "median_touch_share", "median_excursion",
    "median_error", "p90_error", "p99_error", "median_true_error", "median_minimiser_error",
    "diverged_rate",
    "clip_fraction", "default_median_steps", "median_accuracy", "median_angle_deg",
)  # fmt: skip
HISTORIES = {"error": "error", "loss_value": "loss"}  # traces column -> metric: medians


def parent_key(files: list[Path], runs: list[str]) -> str:
    """The study parent's key: a digest of the files it holds and of its runs' keys (a
    changed run is published under a new parent)."""
    return combine(*(sha(f.read_bytes()) for f in files), *runs)


def cell_digests(cells: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Per configuration, the sha256 of its reporting cells: every column, as CSV (floats
    as Python writes them: exact), rows in (lr kind, seed) order."""
    rows = cells[cells["part"] == "report"].sort_values([*CONFIG, "lr_kind", "seed"])
    lines = rows.to_csv(index=False, header=False, lineterminator="\n").splitlines()
    grouped: dict[tuple[str, ...], list[str]] = {}  # strict zip: no line break inside a cell
    for config, line in zip(zip(*(rows[c] for c in CONFIG), strict=True), lines, strict=True):
        grouped.setdefault(config, []).append(line)
    return {config: sha("\n".join(group).encode()) for config, group in grouped.items()}


def run_key(content: Mapping[str, object], cells: str) -> str:
    """A run's content key: a digest of what it shows (name, params, metrics, the tags that
    describe it, as JSON) and of its cells' digest."""
    return combine(sha(json.dumps(content, sort_keys=True).encode()), cells)


def _params(row: pd.Series) -> dict[str, str]:
    """A configuration's settings, named as in params.yaml (betas, beta/delta, ...) by its
    loss's, optimizer's and clipping mode's modules, from its row of the study's table:
    what was trained, not what params.yaml says now."""
    named = (*CONFIG, "lr", "steps", "dtype", "batch_size", "tol")
    out = {k: str(row[k]) for k in named if k in row.index}
    columns = {k: float(row[k]) for k in COLUMNS if k in row.index}
    settings = OPTIMIZERS[row["optimizer"]].named(columns)
    out |= {k: str(v) for k, v in settings.items() if k != "lr"}
    if (loss := LOSSES.get(row["loss"])) is not None and loss.param is not None:
        out[loss.param] = str(row["loss_param"])
    if (classes := CLASS_LOSSES.get(row["loss"])) is not None and classes.smoothing:
        out["label_smoothing"] = str(row["label_smoothing"])
    for key in CLIPS[row["clip"]].columns:
        out[key] = str(row[key])
    return out


def _metrics(row: pd.Series) -> tuple[list[tuple[str, float, int]], list[str]]:
    """The finite measures as final metrics, and the names of the infinite ones (never)."""
    given = [m for m in MEASURES if m in row.index]  # classification: accuracy and angle
    finite = [(m, float(row[m]), 0) for m in given if math.isfinite(float(row[m]))]
    never = [m for m in given if not math.isfinite(float(row[m]))]
    return finite, never


def contents(
    summary: pd.DataFrame,
    cells: pd.DataFrame,
    traces: pd.DataFrame | None,
    tags: dict[str, str],
    tune_seeds: list[int],
) -> list[store.RunContent]:
    """One run per configuration of `summary`: its settings at the tuned lr, measures,
    and (from `traces`, if given) the medians over its reporting seeds of each traced
    step's error and loss, keyed by run_key. `cells` holds the report rows at least;
    `tags` go on every run, outside the keys (the commit, the machine)."""
    tuned = cells[(cells["part"] == "report") & (cells["lr_kind"] == "tuned")]
    first = tuned.drop_duplicates(list(CONFIG)).set_index(list(CONFIG))
    medians = None
    if traces is not None:
        traced = traces[(traces["part"] == "report") & (traces["lr_kind"] == "tuned")]
        medians = traced.groupby([*CONFIG, "step"], sort=True)[list(HISTORIES)].median()
    seeds = {"tune_seeds": str(sorted(tune_seeds))}
    seeds["report_seeds"] = str(sorted(tuned["seed"].unique().tolist()))
    digests = cell_digests(cells)
    out = []
    for _, row in summary.iterrows():
        key = tuple(row[c] for c in CONFIG)
        history = None if medians is None else medians.loc[key]
        points = [] if history is None else [
            (metric, float(v), int(step))
            for column, metric in HISTORIES.items()
            for step, v in history[column].items()
            if math.isfinite(float(v))
        ]  # fmt: skip
        finals, never = _metrics(row)
        name = str(row["config"])
        params = _params(_row(first.loc[key], key)) | seeds
        described = {"config": name, **({"never": ",".join(never)} if never else {})}
        shown = {"name": name, "params": params, "metrics": points + finals, "tags": described}
        out.append(
            store.RunContent(
                name=name,
                key=run_key(shown, digests[key]),
                params=params,
                tags={**tags, **described},
                metrics=points + finals,
            )
        )
    return out


def _row(setting: pd.Series, key: tuple[str, ...]) -> pd.Series:
    """A configuration's settings row with its CONFIG columns put back."""
    import pandas as pd

    return pd.concat([pd.Series(dict(zip(CONFIG, key, strict=True))), setting])
