"""Stage `compare`: the ranking of every trained cell (reports/compare.md), the loss curves
as data (curves.csv, for `dvc plots`) and the plots, from what train wrote: the comparison
shows what was trained even if params.yaml has changed since (pipeline.grid.ranking)."""

import argparse
from pathlib import Path

from pipeline import params
from pipeline.files import atomic, inputs
from pipeline.files.digest import sha
from pipeline.grid import data, plots, ranking
from pipeline.grid.manifest import Manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in ("traces", "env", "data", "ranking", "curves", "plots"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    with inputs.or_exit():
        trained = Manifest.read(args.traces)
        if sha(args.data.read_bytes()) != trained.data:
            raise inputs.InputError(
                f"{args.data} is not the data {args.traces} was trained on "
                "(stage train is stale): run `dvc repro`"
            )
        traces = inputs.read_traces(args.traces, [c.name for c in trained.cells()])
        env = inputs.read_env(args.env)
    c = p.compare
    table = ranking.ranked(trained, traces, c.threshold, c.tie)
    atomic.write_text(args.ranking, ranking.report(table, env, trained.source, c.threshold, c.tie))
    stride = p.compare.curve_stride
    atomic.write_text(args.curves, ranking.curves(trained, traces, stride).to_csv(index=False))
    with atomic.replacing(args.plots, directory=True) as folder:
        points = data.read_points_or_exit(args.data)
        curves = ranking.plotted(trained, traces)
        plots.draw(folder, curves, points, trained.optimum, p.compare.threshold)
