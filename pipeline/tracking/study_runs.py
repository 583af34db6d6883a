"""The study's MLflow runs, built from the study's outputs: one run per configuration at
its tuned learning rate, nested under one parent per study that holds the report and
the tables. At most one run per configuration (504 by default, well under the ~1,000 the
MLflow UI handles), never one per cell.

Keys: a run's content key is a digest of the files it is made from (summary, traces,
cells, report) and its configuration's name, computed without reading them into tables,
so a publish with nothing new costs a few file hashes.
"""

from __future__ import annotations

import csv
import math
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
    "median_steps", "median_lo", "median_hi", "success_rate", "stayed_rate", "median_error",
    "median_true_error", "diverged_rate", "clip_fraction", "default_median_steps",
    "median_accuracy", "median_angle_deg",
)  # fmt: skip
HISTORIES = {"error": "error", "loss_value": "loss"}  # traces column -> metric: medians


def configs(summary: Path) -> list[str]:
    """The configuration names of summary.csv, in its order (csv, no pandas)."""
    with summary.open(newline="", encoding="utf-8") as f:
        return [row["config"] for row in csv.DictReader(f)]


def keys(files: list[Path], names: list[str]) -> tuple[str, dict[str, str]]:
    """(the parent's key, each configuration's run key) from the study's files."""
    digests = [sha(f.read_bytes()) for f in files]
    parent = combine(*digests)
    return parent, {name: combine(parent, sha(name.encode())) for name in names}


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
    run_keys: dict[str, str],
    tags: dict[str, str],
    tune_seeds: list[int],
) -> list[store.RunContent]:
    """One run per configuration of `summary`: its settings at the tuned lr, measures,
    and (from `traces`, if given) the medians over its reporting seeds of each traced
    step's error and loss. `cells` holds the report rows at least."""
    tuned = cells[(cells["part"] == "report") & (cells["lr_kind"] == "tuned")]
    first = tuned.drop_duplicates(list(CONFIG)).set_index(list(CONFIG))
    medians = None
    if traces is not None:
        traced = traces[(traces["part"] == "report") & (traces["lr_kind"] == "tuned")]
        medians = traced.groupby([*CONFIG, "step"], sort=True)[list(HISTORIES)].median()
    seeds = {"tune_seeds": str(sorted(tune_seeds))}
    seeds["report_seeds"] = str(sorted(tuned["seed"].unique().tolist()))
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
        out.append(
            store.RunContent(
                name=name,
                key=run_keys[name],
                params=_params(_row(first.loc[key], key)) | seeds,
                tags={**tags, "config": name, **({"never": ",".join(never)} if never else {})},
                metrics=points + finals,
            )
        )
    return out


def _row(setting: pd.Series, key: tuple[str, ...]) -> pd.Series:
    """A configuration's settings row with its CONFIG columns put back."""
    import pandas as pd

    return pd.concat([pd.Series(dict(zip(CONFIG, key, strict=True))), setting])
