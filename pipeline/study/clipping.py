"""What clipping did in the study, per scenario, loss and optimizer: the ratio of the
clipped runs' IQM steps to the unclipped ones', and where clipping never acted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.study.configuration import CONFIG

if TYPE_CHECKING:
    import pandas as pd


def ratios(summary: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, loss and optimizer (index): IQM steps with each clip mode over IQM
    steps without (columns). 0: only the clipped runs reached the target; inf: only the
    unclipped ones; NaN: neither."""
    iqm = summary.set_index(list(CONFIG))["iqm_steps"].unstack("clip")
    with np.errstate(divide="ignore", invalid="ignore"):
        return iqm.drop(columns="none").div(iqm["none"], axis=0)


def idle(cells: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, loss and optimizer (index), for each clip mode but none (columns):
    True where clipping never acted at the tuned lr (clip_fraction 0 on every reporting
    seed), so the clipped runs are the unclipped ones."""
    report = cells[(cells["part"] == "report") & (cells["lr_kind"] == "tuned")]
    most = report.groupby(list(CONFIG), sort=True)["clip_fraction"].max().unstack("clip")
    return most.drop(columns="none", errors="ignore") == 0
