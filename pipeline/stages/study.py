"""Stage `study`: every cell of the study trained by the batched engine, in chunks.

Tunes first (every configuration x lr x tuning seed), picks each configuration's lr
(pipeline.study.protocol), then reports (tuned and default lr x fresh reporting seeds, each
traced at log-spaced steps), the fine grids around the stability edges and the headline
grid's twins (traced at every step); then the classification, tuned and reported the same
way. Writes one row per cell to cells.parquet (classification: classes.parquet) and the
traced steps to traces.parquet, each chunk as it arrives, so memory does not grow with
the study; every file appears whole or not at all. manifest.json records what was run
(the study's params and scenarios): the analysis reports that, not params.yaml now.
"""

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline import grid, params
from pipeline.files import atomic
from pipeline.grid import data, trace
from pipeline.run import cluster, interrupt
from pipeline.study import chunks, protocol
from pipeline.study import design as st
from pipeline.study import scenarios as sc
from pipeline.study.configuration import CONFIG

TUNE_COLUMNS = (*CONFIG, "lr", "steps_to_target")  # what tuning needs of each tune row
Write = Callable[[str, chunks.Columns], None]  # table name, its next rows


def where(p: params.Params) -> cluster.Where:
    e = p.study.engine
    return cluster.Where(e.scheduler, e.workers, p.env.threads, p.env.deterministic)


class Tables:
    """The parquet files, written a chunk at a time (each one's schema from its first)."""

    def __init__(self) -> None:
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, name: str, columns: chunks.Columns, tmp: Path) -> None:
        table = pa.table(columns)
        if name not in self.writers:
            self.writers[name] = pq.ParquetWriter(tmp, table.schema, compression="zstd")
        self.writers[name].write_table(table)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def train(
    todo: list[chunks.Chunk], here: cluster.Session, desc: str, write: Write
) -> list[chunks.Columns]:
    """Every chunk trained, its rows written; the tune columns of each chunk returned."""
    kept = []
    with tqdm(total=sum(len(c.part) for c in todo), desc=desc, unit="cell") as bar:
        results = here.map(chunks.train_chunk, todo)
        for chunk, (rows, traces) in zip(todo, results, strict=True):
            interrupt.check()
            write("cells", rows)
            if traces is not None:
                write("traces", traces)
            kept.append({k: rows[k] for k in TUNE_COLUMNS})
            bar.update(len(chunk.part))
    return kept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--scenarios", type=Path, required=True, help="generate's study data")
    parser.add_argument("--points", type=Path, required=True, help="the grid's data (twins)")
    parser.add_argument("--cells", type=Path, required=True, help="parquet: a row per cell")
    parser.add_argument("--traces", type=Path, required=True, help="parquet: traced steps")
    parser.add_argument("--classes", type=Path, required=True, help="generate's classification")
    parser.add_argument("--class-cells", type=Path, required=True, help="parquet: a row per cell")
    parser.add_argument("--manifest", type=Path, required=True, help="JSON: what was run")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    points = sc.read_points_or_exit(args.scenarios, p)
    x, y = data.read_points_or_exit(args.points)
    s = p.study
    with (
        interrupt.exit_on_signal(),
        atomic.replacing(args.cells) as cells_tmp,
        atomic.replacing(args.traces) as traces_tmp,
        atomic.replacing(args.class_cells) as classes_tmp,
        cluster.session(where(p)) as w,
    ):
        tables = Tables()
        tmp = {"cells": cells_tmp, "traces": traces_tmp, "classes": classes_tmp}

        def write(name: str, columns: chunks.Columns) -> None:
            tables.write(name, columns, tmp[name])

        tune_rows = train(chunks.chunks(st.tune_parts(p, points), s.engine.chunk), w, "tune", write)
        import pandas as pd

        tuned = protocol.tune(pd.concat([pd.DataFrame(r) for r in tune_rows], ignore_index=True))
        lrs = dict(zip(tuned["config"], tuned["tuned_lr"], strict=True))
        steps = np.array(trace.history_steps(s.steps, s.trace_points))
        later = chunks.chunks(st.report_parts(p, points, lrs), s.engine.chunk, steps)
        later += chunks.chunks(st.edge_parts(p, points), s.engine.chunk)
        twins = st.twin_part(p, grid.cells(p.train), x, y)
        later += chunks.chunks([twins], s.engine.chunk, np.arange(twins.steps))
        train(later, w, "report", write)
        classify_(p, sc.read_classes_or_exit(args.classes, p), w, write)
        tables.close()
        atomic.write_json(args.manifest, ran(p).model_dump(mode="json"))


def ran(p: params.Params) -> params.StudyRecord:
    """What this study runs: its section and its scenarios (the manifest of its outputs)."""
    scenarios = {name: p.scenarios[name] for name in p.study.scenarios}
    return params.StudyRecord(study=p.study, scenarios=scenarios)


def classify_(p: params.Params, data: sc.Classes, here: cluster.Session, write: Write) -> None:
    """The classification: tune, pick each configuration's lr, report; rows to `classes`."""
    import pandas as pd

    size = p.study.engine.chunk
    tune = st.class_tune_part(p, data)
    rows = list(here.map(chunks.train_class_chunk, chunks.class_chunks(tune, size)))
    for r in rows:
        write("classes", r)
    tuned = protocol.tune(pd.concat([pd.DataFrame(r) for r in rows], ignore_index=True))
    report = st.class_report_part(
        p, data, dict(zip(tuned["config"], tuned["tuned_lr"], strict=True))
    )
    for r in here.map(chunks.train_class_chunk, chunks.class_chunks(report, size)):
        write("classes", r)
