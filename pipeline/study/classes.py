"""The study's classification cells: nn.Linear(2, 2) on points labelled by their side of
y = 2x, under every optimizer and clipping mode of the study and each classification loss
(pipeline.losses: ce, margin), tuned and reported as the regression is (pipeline.study.design).
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline import params
from pipeline.engine import cells as settings
from pipeline.engine.cells import CLASSIFICATION, Cells
from pipeline.losses import CLASS_LOSSES
from pipeline.optimizers import OPTIMIZERS
from pipeline.study import scenarios
from pipeline.study.configuration import config_name
from pipeline.study.design import Array, stack
from pipeline.study.rates import Rates, lr_grid, tuned_and_default

CLASSES = "classes"  # the classification's scenario name in every table


@dataclass(frozen=True)
class ClassPart:
    """Classification cells trained together (pipeline.engine.classification), and their labels."""

    part: str  # "tune" or "report"
    cells: Cells
    x: Array  # (datasets, n, 2)
    labels: npt.NDArray[np.int64]  # (datasets, n): 1 above y = 2x
    steps: int
    dtype: str
    names: dict[str, npt.NDArray[np.str_]]  # scenario, loss, optimizer, clip, lr_kind
    engine: str = "fused"  # or "exact" (params: study.engine)

    def __len__(self) -> int:
        return len(self.cells)


def _class_part(
    p: params.Params, part: str, data: scenarios.Classes, rates: Rates, seeds: list[int]
) -> ClassPart:
    """Every classification configuration x its lrs (`rates`, by configuration) x seeds."""
    s, c = p.study, p.study.classification
    rows = [data.seeds.index(seed) for seed in seeds]
    blocks = []
    for loss in dict.fromkeys(c.losses):
        for optimizer in dict.fromkeys(s.optimizers):
            for clip in dict.fromkeys(s.clips):
                tried, kinds = rates[config_name(CLASSES, loss, optimizer, clip)]
                lr, row = (a.ravel() for a in np.meshgrid(tried, rows, indexing="ij"))
                block: dict[str, npt.ArrayLike] = {"optimizer": optimizer, "clip": clip}
                block |= settings.of_params(p.train, optimizer, clip)
                block |= {"loss": loss, "lr": lr, "seed": np.array(data.seeds)[row], "dataset": row}
                smoothing = CLASS_LOSSES[loss].smoothing
                block["label_smoothing"] = c.label_smoothing if smoothing else 0.0
                blocks.append(block | {"lr_kind": np.repeat(kinds, len(rows))})
    table = stack(blocks)
    names = {k: table.pop(k).astype(str) for k in ("lr_kind",) if k in table}
    names |= {k: table[k].astype(str) for k in ("optimizer", "clip")}
    names["loss"] = table.pop("loss").astype(str)
    names["scenario"] = np.full(len(names["loss"]), CLASSES)
    cells = Cells.of(losses=CLASSIFICATION, loss=names["loss"], **table)  # type: ignore[arg-type]
    return ClassPart(part, cells, data.x, data.labels, s.steps, s.dtype, names, s.engine)


def tune_part(p: params.Params, data: scenarios.Classes) -> ClassPart:
    """Tuning: every classification configuration x the log lr grid (and the library's
    default) x tuning seed; the target is every training point classified right."""
    s = p.study
    rates: Rates = {}
    for o in dict.fromkeys(s.optimizers):
        tried = np.unique(np.append(lr_grid(s.lr), OPTIMIZERS[o].default_lr))
        for loss in s.classification.losses:
            for c in s.clips:
                rates[config_name(CLASSES, loss, o, c)] = (tried, np.full(len(tried), ""))
    return _class_part(p, "tune", data, rates, s.seeds.tune)


def report_part(p: params.Params, data: scenarios.Classes, tuned: dict[str, float]) -> ClassPart:
    """Reporting: each classification configuration at its tuned and default lr x
    reporting seed."""
    s = p.study
    rates = {
        config_name(CLASSES, loss, o, c): tuned_and_default(
            tuned[config_name(CLASSES, loss, o, c)], o
        )
        for loss in s.classification.losses
        for o in s.optimizers
        for c in s.clips
    }
    return _class_part(p, "report", data, rates, s.seeds.report)
