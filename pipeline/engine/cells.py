"""Cells as columns: entry i of every array is cell i's. A cell is a loss, an optimizer, a
clipping mode (codes into the registries' names), a seed, a dataset and its settings, one
column each (lr, the loss's parameter, every column of every update rule and clipping
mode: pipeline.optimizers, pipeline.clips). A setting a cell's loss, optimizer or clip does
not use holds that column's neutral value and is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline import params
from pipeline.clips import CLIPS
from pipeline.fields import norm_type_of
from pipeline.losses import CLASS_LOSSES, LOSSES
from pipeline.optimizers import OPTIMIZERS

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

REGRESSION = tuple(LOSSES)  # the losses of nn.Linear(1, 1), in code order
CLASSIFICATION = tuple(CLASS_LOSSES)  # of nn.Linear(2, 2)
OPTIMIZER_NAMES, CLIP_NAMES = tuple(OPTIMIZERS), tuple(CLIPS)
# every setting column and its neutral value (what a cell that does not use it holds)
LOSS_COLUMNS = {"loss_param": 1.0, "label_smoothing": 0.0}  # regression's beta / delta;
# classification's CrossEntropyLoss(label_smoothing)
COLUMNS: dict[str, float] = {
    "lr": math.nan,
    **LOSS_COLUMNS,
    **{k: v for o in OPTIMIZERS.values() for k, v in o.rule.COLUMNS.items()},
    **{k: v for c in CLIPS.values() for k, v in c.columns.items()},
}


@dataclass(frozen=True)
class Cells:
    """Cells as columns; `losses` names the loss codes (REGRESSION or CLASSIFICATION)."""

    loss: Ints
    optimizer: Ints  # codes into OPTIMIZER_NAMES
    clip: Ints  # codes into CLIP_NAMES
    seed: Ints  # initial point: torch.manual_seed(seed), then the model's nn.Linear
    dataset: Ints  # row of the data the cell trains on
    settings: dict[str, Floats]  # every column of COLUMNS
    losses: tuple[str, ...] = REGRESSION

    def __len__(self) -> int:
        return len(self.seed)

    @property
    def lr(self) -> Floats:
        return self.settings["lr"]

    @classmethod
    def of(cls, *, losses: tuple[str, ...] = REGRESSION, **columns: npt.ArrayLike) -> Cells:
        """Cells from columns, each an array or one value for all, names as strings or
        codes (vectorised: no Python loop per cell). Required: loss, optimizer, lr, seed.
        A setting not given takes the cell's optimizer's default (pipeline.optimizers),
        else the column's neutral value. ValueError names every invalid setting."""
        unknown = set(columns) - {"loss", "optimizer", "clip", "seed", "dataset", *COLUMNS}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        arrays = dict(
            zip(columns, np.broadcast_arrays(*map(np.asarray, columns.values())), strict=True)
        )
        n = np.size(arrays["lr"])

        def column(name: str, default: object) -> npt.NDArray[np.generic]:
            return np.broadcast_to(arrays.get(name, np.asarray(default)), (n,))

        loss = _codes(column("loss", ""), losses)
        optimizer = _codes(column("optimizer", ""), OPTIMIZER_NAMES)
        clip = _codes(column("clip", "none"), CLIP_NAMES)
        ints = {k: column(k, 0).astype(np.int64) for k in ("seed", "dataset")}
        settings = {k: column(k, v).astype(np.float64) for k, v in COLUMNS.items()}
        for code, name in enumerate(OPTIMIZER_NAMES):  # the optimizer's own defaults
            for k, v in OPTIMIZERS[name].defaults.items():
                mine = (optimizer == code) & np.isnan(settings[k])
                settings[k] = np.where(mine, v, settings[k])
        cells = cls(loss, optimizer, clip, ints["seed"], ints["dataset"], settings, losses)
        _validate(cells)
        return cells

    @classmethod
    def concat(cls, parts: Sequence[Cells]) -> Cells:
        """The cells of every part, in order (their losses must be alike)."""
        join = np.concatenate
        return cls(
            loss=join([c.loss for c in parts]),
            optimizer=join([c.optimizer for c in parts]),
            clip=join([c.clip for c in parts]),
            seed=join([c.seed for c in parts]),
            dataset=join([c.dataset for c in parts]),
            settings={k: join([c.settings[k] for c in parts]) for k in parts[0].settings},
            losses=parts[0].losses,
        )

    def take(self, index: npt.ArrayLike) -> Cells:
        """The cells at `index`, in its order."""
        i = np.asarray(index, dtype=np.int64)
        settings = {k: v[i] for k, v in self.settings.items()}
        return Cells(
            self.loss[i], self.optimizer[i], self.clip[i], self.seed[i], self.dataset[i],
            settings, self.losses,
        )  # fmt: skip

    def names(self, what: str) -> npt.NDArray[np.str_]:
        """Each cell's loss, optimizer or clip name."""
        names = {"loss": self.losses, "optimizer": OPTIMIZER_NAMES, "clip": CLIP_NAMES}[what]
        return np.array(names)[getattr(self, what)]


def columns(
    loss: str,
    loss_kwargs: Mapping[str, object],
    optimizer: str,
    optimizer_kwargs: Mapping[str, object],
    clip_kwargs: Mapping[str, object],
) -> dict[str, float]:
    """One cell's setting columns from its settings as params.yaml names them: the loss's
    parameter as loss_param, the optimizer's as its module maps them (betas: beta1 and
    beta2), the clipping thresholds (norm_type 'inf' as inf)."""
    named: dict[str, float] = {}
    if (param := LOSSES[loss].param) is not None:
        named["loss_param"] = float(loss_kwargs[param])  # type: ignore[arg-type]
    named |= OPTIMIZERS[optimizer].to_columns(optimizer_kwargs)  # type: ignore[arg-type]
    for k, v in clip_kwargs.items():
        named[k] = norm_type_of(v) if k == "norm_type" else float(v)  # type: ignore[arg-type]
    return named


def of_params(
    train: params.TrainParams, optimizer: str, clip: str, loss: str | None = None
) -> dict[str, float]:
    """The setting columns of an optimizer, clipping mode and (regression) loss, from the
    train section of params (lr: the optimizer's there)."""
    section = CLIPS[clip].section
    clip_kwargs = getattr(train.clips, section).model_dump() if section else {}
    named = OPTIMIZERS[optimizer].to_columns(getattr(train.optimizers, optimizer).model_dump())
    named |= {k: norm_type_of(v) if k == "norm_type" else float(v) for k, v in clip_kwargs.items()}
    if loss is not None and (param := LOSSES[loss].param) is not None:
        named["loss_param"] = float(getattr(train.losses, loss).model_dump()[param])
    return named


def _codes(values: npt.NDArray[np.generic], names: tuple[str, ...]) -> Ints:
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    unique, inverse = np.unique(values, return_inverse=True)  # a lookup per name, not per cell
    unknown = sorted(set(unique.tolist()) - set(names))
    if unknown:
        raise ValueError(f"unknown names {unknown}; expected one of {names}")
    return np.array([names.index(u) for u in unique], dtype=np.int64)[inverse]


def _validate(c: Cells) -> None:
    """ValueError naming every setting out of its range (and the first cells with it)."""
    s = c.settings
    codes = ((c.loss, c.losses), (c.optimizer, OPTIMIZER_NAMES), (c.clip, CLIP_NAMES))
    if any(((v < 0) | (v >= len(n))).any() for v, n in codes):
        raise ValueError("invalid cells: codes outside the registries' names")
    optimizer = c.names("optimizer")
    rule_has = {
        k: np.array([k in OPTIMIZERS[o].rule.COLUMNS for o in OPTIMIZER_NAMES]) for k in ("eps",)
    }
    with_param = np.array(
        [c.losses is REGRESSION and LOSSES[n].param is not None for n in c.losses]
    )
    form = {
        name: np.array([CLIPS[n].batched is CLIPS[name].batched for n in CLIP_NAMES])
        for name in ("norm", "value")
    }
    fractions = [s[k] for k in ("momentum", "dampening", "beta1", "beta2", "alpha") if k in s]
    nonnegative = [
        s[k] for k in ("weight_decay", "lr_decay", "initial_accumulator_value") if k in s
    ]
    checks = {
        "lr > 0, finite": ~((s["lr"] > 0) & np.isfinite(s["lr"])),
        "0 <= momentum, dampening, beta1, beta2, alpha < 1": ~np.all(
            [(v >= 0) & (v < 1) for v in fractions], 0
        ),
        "weight_decay, lr_decay, initial_accumulator_value >= 0": ~np.all(
            [v >= 0 for v in nonnegative], 0
        ),
        "eps > 0": rule_has["eps"][c.optimizer] & ~(s["eps"] > 0),
        "nesterov: momentum > 0, dampening 0": (optimizer == "nesterov")
        & ((s["momentum"] <= 0) | (s["dampening"] != 0)),
        "smoothl1 beta, huber delta > 0": with_param[c.loss] & ~(s["loss_param"] > 0),
        "norm clip: max_norm > 0, norm_type >= 1": form["norm"][c.clip]
        & ~((s["max_norm"] > 0) & (s["norm_type"] >= 1)),
        "value clip: clip_value > 0": form["value"][c.clip] & ~(s["clip_value"] > 0),
        "0 <= label_smoothing <= 1": ~((s["label_smoothing"] >= 0) & (s["label_smoothing"] <= 1)),
        "seed, dataset >= 0": (c.seed < 0) | (c.dataset < 0),
    }
    bad = [f"{k} (cells {np.flatnonzero(m)[:5].tolist()})" for k, m in checks.items() if m.any()]
    if bad:
        raise ValueError("invalid cells: " + "; ".join(bad))
