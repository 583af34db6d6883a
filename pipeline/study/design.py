"""The study's cells, as columns: what each part of the study trains, on which data.

A configuration is (scenario, loss, optimizer, clip); its cells sweep the learning rate
and the seeds. Four parts, each a list of `Part`s of one scenario (the engine trains
one data shape at a time):
- tune: every configuration x lr (the log grid, the library's default, and fractions of
  the analytic stability edge for gradient descent) x tuning seed;
- report: every configuration at its tuned lr (pipeline.study.protocol picks it from the tune
  part) and at the library's default lr, x reporting seed, fresh;
- edge: gradient descent with and without momentum around each analytic stability edge,
  on a fine lr grid, in float64 and full batch, started next to the minimiser (inside the
  quadratic zone of Huber and smooth L1, where pipeline.study.stability's edges hold);
- twin: the headline grid's cells exactly (seed 42, its data and settings), whose finals
  the report sets beside the reference engine's.
Nothing here trains or writes: pipeline.study.chunks does.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from pipeline import grid, params, polygon
from pipeline.engine import cells as settings
from pipeline.engine.cells import Cells
from pipeline.study import minimiser, scenarios, stability
from pipeline.study.configuration import config_name
from pipeline.study.rates import Rates, lrs, tuned_and_default

Array = npt.NDArray[np.float64]
START = 1e-4  # the edge part starts this far (relative) from the minimiser: no transient leaves
# the quadratic zone (at 1e-3 some momentum runs did, and missed the edge by 2-8%)


@dataclass(frozen=True)
class Part:
    """Cells trained together (one engine call: one number of points, batch size, steps
    and dtype): the engine's inputs and each cell's labels."""

    part: str  # "tune", "report", "edge" or "twin"
    cells: Cells
    x: Array  # (datasets, n)
    y: Array
    steps: int
    dtype: str
    batch_size: int
    target: Array  # (cells, V, 2): the set of minimisers of the cell's loss on its data,
    # a convex polygon padded by its last vertex (pipeline.engine.target); mostly a point
    tol: Array  # (cells,): the measures count steps within tol of the target
    labels: dict[str, npt.NDArray[np.str_]]  # scenario, loss, optimizer, clip (name, lr_kind)
    line: Array  # (cells, 2): the (slope, intercept) the cell's data were drawn from
    theory_lr: Array  # (cells,): the analytic stability edge (edge part; nan elsewhere)
    start: Array | None = None  # (cells, 2): the initial point, if not the seed's

    def __len__(self) -> int:
        return len(self.cells)


def stack(blocks: Sequence[dict[str, npt.ArrayLike]]) -> dict[str, npt.NDArray[np.generic]]:
    """Blocks of columns (each value an array or one value for the block) as one table; a
    setting a block lacks (adam's betas in an sgd block) takes the engine's default."""
    names = list(dict.fromkeys(k for b in blocks for k in b))
    sizes = [np.size(b["lr"]) for b in blocks]
    out = {}
    for name in names:
        default = settings.COLUMNS.get(name, 0.0)
        columns = [
            np.broadcast_to(np.asarray(b.get(name, default)), (n,))
            for b, n in zip(blocks, sizes, strict=True)
        ]
        out[name] = np.concatenate(columns)
    return out


def _part(
    part: str,
    scenario: str,
    blocks: list[dict[str, npt.ArrayLike]],
    data: scenarios.Points,
    steps: int,
    dtype: str,
    batch_size: int,
    tol: float,
    loss_kwargs: dict[str, dict[str, float]],
) -> Part:
    """A Part from blocks of columns: settings, `dataset` (row of data), labels, and
    `theory_lr` where a block has one; its target is the minimiser of each cell's loss
    (with its `loss_kwargs`) on its data."""
    table = stack(blocks)
    theory = table.pop("theory_lr").astype(np.float64) if "theory_lr" in table else None
    labels: dict[str, npt.NDArray[np.str_]] = {
        k: table.pop(k).astype(str) for k in ("name", "lr_kind") if k in table
    }
    labels |= {k: table[k].astype(str) for k in ("loss", "optimizer", "clip")}
    cells = Cells.of(**table)  # type: ignore[arg-type]
    found = {
        str(loss): polygon.padded(minimiser.sets(str(loss), loss_kwargs[str(loss)], data.x, data.y))
        for loss in np.unique(labels["loss"])
    }
    target = np.empty((len(cells), max(q.shape[1] for q in found.values()), 2))
    for loss, sets in found.items():
        at = labels["loss"] == loss
        target[at] = polygon.widen(sets, target.shape[1])[cells.dataset[at]]
    labels["scenario"] = np.full(len(cells), scenario)
    return Part(
        part, cells, data.x, data.y, steps, dtype, batch_size, target,
        np.full(len(cells), tol), labels, np.tile(np.array(data.line), (len(cells), 1)),
        np.full(len(cells), np.nan) if theory is None else theory,
    )  # fmt: skip


def merge(parts: Sequence[Part]) -> list[Part]:
    """Parts that one engine call can train together (the same part name, number of
    points, batch size, steps and dtype) as one: fewer, larger calls, since a step's cost
    is mostly per call until cells number thousands. Datasets are stacked; order kept."""
    groups: dict[tuple[object, ...], list[Part]] = {}
    for q in parts:
        groups.setdefault((q.part, q.x.shape[1], q.batch_size, q.steps, q.dtype), []).append(q)
    merged = []
    for members in groups.values():
        offsets = np.cumsum([0, *(len(q.x) for q in members)])[:-1]
        cells = Cells.concat(
            [
                replace(q.cells, dataset=q.cells.dataset + o)
                for q, o in zip(members, offsets, strict=True)
            ]
        )
        first = members[0]
        merged.append(
            replace(
                first,
                cells=cells,
                x=np.concatenate([q.x for q in members]),
                y=np.concatenate([q.y for q in members]),
                target=polygon.stacked([q.target for q in members]),
                tol=np.concatenate([q.tol for q in members]),
                labels={k: np.concatenate([q.labels[k] for q in members]) for k in first.labels},
                line=np.concatenate([q.line for q in members]),
                theory_lr=np.concatenate([q.theory_lr for q in members]),
                start=None if first.start is None else np.concatenate([q.start for q in members]),  # type: ignore[misc]
            )
        )
    return merged


def _loss_kwargs(p: params.Params) -> dict[str, dict[str, float]]:
    """Each loss's keyword arguments, as params give them."""
    return {loss: getattr(p.train.losses, loss).model_dump() for loss in p.study.losses}


def _config_blocks(
    p: params.Params,
    name: str,
    points: scenarios.Points,
    rates: Rates,
    seeds: list[int],
) -> list[dict[str, npt.ArrayLike]]:
    """Blocks of cells of every configuration of scenario `name` x its lrs x seeds;
    rates: per optimizer (or per configuration name) the learning rates to try, and what
    each one is (`lr_kind`: tuned, default; "" while tuning)."""
    s = p.study
    rows = [points.seeds.index(seed) for seed in seeds]
    blocks = []
    for loss in dict.fromkeys(s.losses):
        for optimizer in dict.fromkeys(s.optimizers):
            for clip in dict.fromkeys(s.clips):
                config = config_name(name, loss, optimizer, clip)
                tried, kinds = rates[config] if config in rates else rates[optimizer]
                lr, row = (a.ravel() for a in np.meshgrid(tried, rows, indexing="ij"))
                block: dict[str, npt.ArrayLike] = {"loss": loss, "optimizer": optimizer}
                block |= {"clip": clip, **settings.of_params(p.train, optimizer, clip, loss)}
                block |= {"lr": lr, "seed": np.array(points.seeds)[row], "dataset": row}
                blocks.append(block | {"lr_kind": np.repeat(kinds, len(rows))})
    return blocks


def tune_parts(p: params.Params, data: dict[str, scenarios.Points]) -> list[Part]:
    """Tuning: every configuration x lr (`lrs`) x tuning seed, one Part per scenario."""
    s = p.study
    parts = []
    for name in s.scenarios:
        points, scenario = data[name], p.scenarios[name]
        rates: Rates = {}
        for o in dict.fromkeys(s.optimizers):
            tried = lrs(p, o, points.x[0])
            rates[o] = (tried, np.full(len(tried), ""))
        blocks = _config_blocks(p, name, points, rates, s.seeds.tune)
        tol = scenarios.tolerance(scenario, points)
        kwargs = _loss_kwargs(p)
        part = _part(
            "tune", name, blocks, points, s.steps, s.dtype, scenario.batch_size, tol, kwargs
        )
        parts.append(part)
    return merge(parts)


def report_parts(
    p: params.Params, data: dict[str, scenarios.Points], tuned: dict[str, float]
) -> list[Part]:
    """Reporting: every configuration at its tuned lr (`tuned`: configuration name -> lr)
    and at the library's default lr, x each reporting seed (fresh: none tuned on)."""
    s = p.study
    parts = []
    for name in s.scenarios:
        points, scenario = data[name], p.scenarios[name]
        rates = {
            config_name(name, loss, o, c): tuned_and_default(
                tuned[config_name(name, loss, o, c)], o
            )
            for loss in s.losses
            for o in s.optimizers
            for c in s.clips
        }
        blocks = _config_blocks(p, name, points, rates, s.seeds.report)
        parts.append(
            _part(
                "report",
                name,
                blocks,
                points,
                s.steps,
                s.dtype,
                scenario.batch_size,
                scenarios.tolerance(scenario, points),
                _loss_kwargs(p),
            )
        )
    return merge(parts)


def edge_parts(p: params.Params, data: dict[str, scenarios.Points]) -> list[Part]:
    """Around each analytic edge, for the first reporting seed's data: edge * (1 + k step)."""
    s, e = p.study, p.study.stability
    seed = s.seeds.report[0]
    k = np.arange(-round(e.span / e.step), round(e.span / e.step) + 1)
    parts = []
    for name in s.scenarios:
        points = data[name]
        row = points.seeds.index(seed)
        one = scenarios.Points(
            [seed], points.x[row : row + 1], points.y[row : row + 1], points.line
        )
        blocks: list[dict[str, npt.ArrayLike]] = []
        for loss in dict.fromkeys(s.losses):
            kwargs = getattr(p.train.losses, loss).model_dump()
            w, b = minimiser.minimisers(loss, kwargs, one.x, one.y)
            lam = float(stability.lam_max(stability.hessian(loss, kwargs, one.x, one.y, w, b))[0])
            for optimizer in [o for o in dict.fromkeys(s.optimizers) if stability.has_edge(o)]:
                hyper = getattr(p.train.optimizers, optimizer).model_dump()
                theory = float(stability.edge(optimizer, hyper, lam))
                if not math.isfinite(theory):
                    continue  # no curvature at the minimiser (L1; every point in a linear zone)
                for clip in dict.fromkeys(s.clips):
                    block: dict[str, npt.ArrayLike] = {"loss": loss, "optimizer": optimizer}
                    block |= {"clip": clip, **settings.of_params(p.train, optimizer, clip, loss)}
                    grid_lr: dict[str, npt.ArrayLike] = {"lr": theory * (1 + k * e.step)}
                    grid_lr["theory_lr"] = theory
                    blocks.append(block | grid_lr | {"seed": seed, "dataset": 0})
        if blocks:
            part = _part("edge", name, blocks, one, e.steps, "float64", 0, e.tol, _loss_kwargs(p))
            # inside the quadratic zone: the minimiser, moved by START (relative) along
            # (1, -1): where the analysis of the edge holds for Huber and smooth L1 too
            point = part.target[:, 0]  # a curved loss: its minimiser is a point
            offset = START * np.maximum(np.abs(point), 1.0) * np.array([1.0, -1.0])
            parts.append(replace(part, start=point + offset))
    return merge(parts)


def grid_cells(cells: Sequence[grid.Cell]) -> Cells:
    """The grid's cells as the batched engine's, each with its settings."""
    rows = [
        {"loss": c.loss, "optimizer": c.optimizer, "clip": c.clip, "seed": c.seed}
        | settings.columns(c.loss, c.loss_kwargs, c.optimizer, c.optimizer_kwargs, c.clip_kwargs)
        for c in cells
    ]
    names = dict.fromkeys(k for r in rows for k in r)  # a setting of some cells only
    found = {k: np.array([r.get(k, settings.COLUMNS.get(k)) for r in rows]) for k in names}
    return Cells.of(**found)  # type: ignore[arg-type]  # no column is named `losses`


def twin_part(p: params.Params, cells: Sequence[grid.Cell], x: Array, y: Array) -> Part:
    """The headline grid's cells, exactly, on its points (x, y of shape (n,))."""
    blocks = [
        {"loss": c.loss, "optimizer": c.optimizer, "clip": c.clip, "seed": c.seed}
        | settings.columns(c.loss, c.loss_kwargs, c.optimizer, c.optimizer_kwargs, c.clip_kwargs)
        | {"dataset": 0, "name": c.name}
        for c in cells
    ]
    kwargs = {c.loss: {k: float(v) for k, v in c.loss_kwargs.items()} for c in cells}  # type: ignore[arg-type]
    data = scenarios.Points([0], x[None, :], y[None, :], (math.nan, math.nan))
    dtype = cells[0].dtype if cells else "float32"
    steps = cells[0].steps if cells else 0
    tol = p.study.stability.tol
    return _part("twin", "grid", blocks, data, steps, dtype, 0, tol, kwargs)  # type: ignore[arg-type]
