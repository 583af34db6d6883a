"""The study's training: every cell of every part, trained by the batched engine in chunks
wherever the chunks run (pipeline.run.cluster), each chunk's rows written as it arrives.

Tunes first (every configuration x lr x tuning seed), picks each configuration's lr
(pipeline.study.protocol), then reports (tuned and default lr x fresh reporting seeds, each
traced at log-spaced steps), the fine grids around the stability edges and the headline
grid's twins (traced at every step); then the classification, tuned and reported the same
way. Rows go to the tables `cells`, `traces` and `classes` through a `Write`: memory does
not grow with the study.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline import grid, params
from pipeline.files import digest, inputs
from pipeline.grid import trace
from pipeline.run import cluster, interrupt
from pipeline.study import chunks, classes, protocol
from pipeline.study import design as st
from pipeline.study import scenarios as sc
from pipeline.study.configuration import CONFIG
from pipeline.study.protocol import MEASURE

if TYPE_CHECKING:
    import pandas as pd

TUNE_COLUMNS = (*CONFIG, "lr", MEASURE)  # what tuning needs of each tune row
Write = Callable[[str, chunks.Columns], None]  # table name, its next rows


class Tables:
    """Parquet files written a chunk at a time (each one's schema from its first chunk)."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, name: str, columns: chunks.Columns) -> None:
        table = pa.table(columns)
        if name not in self.writers:
            self.writers[name] = pq.ParquetWriter(
                self.paths[name], table.schema, compression="zstd"
            )
        self.writers[name].write_table(table)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def train(
    todo: list[chunks.Chunk], here: cluster.Session, desc: str, write: Write
) -> list[pd.DataFrame]:
    """Every chunk trained, its rows written; the tune columns of each chunk returned, the
    configuration's names as categories (a byte a cell, not a string: 10^7 cells fit)."""
    import pandas as pd

    names = {k: sorted({str(v) for c in todo for v in np.unique(c.part.labels[k])}) for k in CONFIG}
    kinds = {k: pd.CategoricalDtype(v) for k, v in names.items()}  # sorted: as strings sort
    kept = []
    total = sum(len(c.part) for c in todo)
    with (
        tqdm(total=total, desc=desc, unit="cell") as bar,
        closing(here.map(chunks.train_chunk, todo)) as results,
    ):
        for chunk, (rows, traces) in zip(todo, results, strict=True):
            interrupt.check()
            write("cells", rows)
            if traces is not None:
                write("traces", traces)
            kept.append(pd.DataFrame({k: rows[k] for k in TUNE_COLUMNS}).astype(kinds))
            bar.update(len(chunk.part))
    return kept


def study(
    p: params.Params,
    points: dict[str, sc.Points],
    grid_points: tuple[np.ndarray, np.ndarray],
    class_points: sc.Classes,
    here: cluster.Session,
    write: Write,
) -> pd.DataFrame:
    """Every part of the study on its data (`grid_points`: the grid's x, y, for the twins);
    the tuned table (protocol.tune) of every configuration, regression then classification."""
    import pandas as pd

    s = p.study
    tune_rows = train(
        chunks.chunks(st.tune_parts(p, points), s.chunk, engine=s.engine), here, "tune", write
    )
    tuned = protocol.tune(pd.concat(tune_rows, ignore_index=True))
    lrs = dict(zip(tuned["config"], tuned["tuned_lr"], strict=True))
    steps = np.array(trace.history_steps(s.steps, s.trace_points))
    later = chunks.chunks(st.report_parts(p, points, lrs), s.chunk, steps, s.engine)
    later += chunks.chunks(st.edge_parts(p, points), s.chunk, engine=s.engine)
    twins = st.twin_part(p, grid.cells(p.train), *grid_points)
    later += chunks.chunks([twins], s.chunk, np.arange(twins.steps), "exact")  # as torch.optim
    train(later, here, "report", write)
    return pd.concat([tuned, classify(p, class_points, here, write)], ignore_index=True)


def source(cells: Path, traces: Path, classes: Path) -> str:
    """The digest of the study's tables: the analysis stamps it on what it made from them."""
    return digest.of_files(cells, traces, classes)


def ran(p: params.Params) -> params.StudyRecord:
    """What this study runs: its section and its scenarios (the manifest of its outputs)."""
    scenarios = {name: p.scenarios[name] for name in p.study.scenarios}
    return params.StudyRecord(study=p.study, scenarios=scenarios)


def read_record(path: Path) -> params.StudyRecord:
    """The study's manifest: what it ran; InputError if missing or not one."""
    from pydantic import ValidationError

    doc = inputs.read_json(path, "study")
    try:
        return params.StudyRecord.model_validate(doc)
    except ValidationError:
        raise inputs.InputError(f"{path}: not a study manifest (run `dvc repro study`)") from None


def classify(
    p: params.Params, data: sc.Classes, here: cluster.Session, write: Write
) -> pd.DataFrame:
    """The classification: tune, pick each configuration's lr, report; rows to `classes`;
    the tuned table of its configurations."""
    import pandas as pd

    size = p.study.chunk
    tune = classes.tune_part(p, data)
    with closing(here.map(chunks.train_class_chunk, chunks.class_chunks(tune, size))) as found:
        rows = list(found)
    for r in rows:
        write("classes", r)
    tuned = protocol.tune(pd.concat([pd.DataFrame(r) for r in rows], ignore_index=True))
    report = classes.report_part(
        p, data, dict(zip(tuned["config"], tuned["tuned_lr"], strict=True))
    )
    with closing(here.map(chunks.train_class_chunk, chunks.class_chunks(report, size))) as found:
        for r in found:
            write("classes", r)
    return tuned
