"""Stage `walkthrough`: the tutorial's single step, replayed exactly and checked by hand
(pipeline.grid.walkthrough), as JSON, Markdown and the autograd graph's DOT source."""

import argparse
from pathlib import Path

from pipeline import params
from pipeline.files import atomic
from pipeline.grid.walkthrough import classify_step, every_loss, replay
from pipeline.grid.walkthrough_report import cross_entropy_section, report, to_json
from pipeline.run import numerics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="folder for the reports and graph")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    numerics.pin(p.env.threads, p.env.deterministic)
    tutorial = replay(p.walkthrough.seed, p.walkthrough.lr, "mse", {})
    losses = every_loss(p)
    classes = classify_step(p.walkthrough.seed, p.study.classification.label_smoothing)
    with atomic.replacing(args.out, directory=True) as folder:
        found = to_json(tutorial, losses, p.walkthrough) | {"cross_entropy": classes}
        atomic.write_json(folder / "walkthrough.json", found)
        text = report(tutorial, losses, p.walkthrough) + cross_entropy_section(classes)
        atomic.write_text(folder / "walkthrough.md", text)
        atomic.write_text(folder / "graph.dot", tutorial.graph)
    worst = max(max(s.grad_diff(), s.step_diff()) for s in [tutorial, *losses.values()])
    worst = max(worst, float(classes["max_abs_diff"]))  # type: ignore[arg-type]
    print(f"walkthrough: wrote {args.out}; largest |autograd - closed form| = {worst:.2g}")
