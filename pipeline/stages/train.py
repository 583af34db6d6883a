"""Stage `train`: every grid cell with the reference engine, full batch, every step kept.

Writes into the traces folder one CSV per cell and manifest.json (what was trained: each
cell's settings and measures, the data's digest); then reports/cells.csv (one row per
cell) and reports/metrics.json (the headline figures). Cells run side by side in
`env.workers` processes (pipeline.run.cluster), each pinned to `env.threads` threads:
results do not depend on where a cell ran.
"""

import argparse
from contextlib import closing
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline import grid, params
from pipeline.files import atomic, digest
from pipeline.grid import data, manifest, table, trace
from pipeline.grid.reference import train_cell
from pipeline.run import cluster, interrupt, numerics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--traces", type=Path, required=True, help="folder: a CSV per cell")
    parser.add_argument("--cells", type=Path, required=True, help="CSV: a row per cell")
    parser.add_argument("--metrics", type=Path, required=True, help="JSON: headline figures")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    x, y = data.read_points_or_exit(args.data)
    numerics.pin(p.env.threads, p.env.deterministic)
    cells = grid.cells(p.train)
    optimum = data.generating_line(p.generate)
    inputs, targets = (torch.tensor(v).reshape(-1, 1) for v in (x, y))  # float64, as read
    entries = []
    with (
        interrupt.exit_on_signal(),
        atomic.replacing(args.traces, directory=True) as folder,
        cluster.session(cluster.where(p.env)) as here,
        closing(here.map(partial(train_cell, x=inputs, y=targets), cells)) as traces,
    ):
        for done in tqdm(traces, total=len(cells), desc="train", unit="cell"):
            text = trace.to_frame(done).to_csv(index=False)
            (folder / f"{done.cell.name}.csv").write_text(text, encoding="utf-8")
            measures = trace.measures(done, optimum)
            entries.append(manifest.Entry(done.cell, digest.sha(text.encode()), measures))
        trained = manifest.Manifest(digest.sha(args.data.read_bytes()), optimum, entries)
        trained.write(folder)
    frame = table.table(trained)
    atomic.write_text(args.cells, table.to_csv(frame))
    atomic.write_json(args.metrics, table.headline(frame))
