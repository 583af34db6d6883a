"""Stage `explorer`: reports/explorer.html, one self-contained page (Vega and the data
inlined, no server) to step through the grid's and the study's runs: each step's .grad
before and after clipping, the optimizer's state and the update on the loss surface, and
a rate map of gradient descent, heavy ball and Nesterov (pipeline.explorer). It opens on
the tutorial's own step; publish attaches it to the grid's MLflow runs."""

import argparse
from pathlib import Path

from pipeline import params
from pipeline.explorer import content, page
from pipeline.files import atomic, inputs
from pipeline.run import numerics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--traces", type=Path, required=True, help="train's folder")
    parser.add_argument("--points", type=Path, required=True, help="the grid's data")
    parser.add_argument("--scenarios", type=Path, required=True, help="the study's data")
    parser.add_argument("--cells", type=Path, required=True, help="study's cells.parquet")
    parser.add_argument("--study-traces", type=Path, required=True, help="its traces.parquet")
    parser.add_argument("--walkthrough", type=Path, required=True, help="walkthrough.json")
    parser.add_argument("--out", type=Path, required=True, help="the page")
    a = parser.parse_args(argv)
    p = params.load_or_exit(a.params)
    numerics.pin(p.env.threads, p.env.deterministic)  # the replays: the study's bits
    found = content.Inputs(a.traces, a.points, a.scenarios, a.cells, a.study_traces, a.walkthrough)
    with inputs.or_exit():
        index, runs = content.build(found, p.explorer.points)
        listed, values = runs.index()
        kinds = content.kinds(runs, int(index["study_steps"]))  # type: ignore[call-overload]
        text = page.html_page({**index, "runs": listed}, values, kinds)
    atomic.write_text(a.out, text)
    print(f"Explorer: {a.out.resolve().as_uri()}")
