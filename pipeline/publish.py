"""Stage `publish`: every cell's run in MLflow, nested under a parent run with the report.

Always runs (DVC `always_changed`) because MLflow is outside DVC's view: a deleted
mlflow.db or a run-cache restore must still end with every cell in MLflow. Runs are keyed
by content, so publishing what is already there adds nothing; that check reads SQLite
directly, so a no-op costs no `import mlflow`.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
from functools import partial
from importlib.metadata import version
from pathlib import Path

from tqdm import tqdm

from pipeline import grid, interrupt, params, record, tracking

EXIT_TRACKING = 1
FINAL = (  # final metrics of each cell run (names are an API)
    "final_loss",
    "final_weight",
    "final_bias",
    "dist_to_optimum",
    "max_grad_norm",
    "clip_fraction",
    "diverged",
    "diverged_step",
)


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())  # length-safe: hash of hashes
    return h.hexdigest()[:16]


def cell_key(cell: grid.Cell, data: bytes, trace: bytes) -> str:
    """Equal settings, data and results give an equal key: republishing adds nothing."""
    return digest(json.dumps(cell.settings(), sort_keys=True).encode(), data, trace)


def git_state(root: Path) -> dict[str, str]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else "unknown"

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": commit,
        "git_dirty": "unknown" if commit == "unknown" else str(bool(dirty)).lower(),
    }


def cell_content(
    cell: grid.Cell,
    key: str,
    trace: Path,
    plot: Path,
    summary: dict[str, object],
    tags: dict[str, str],
    stride: int,
) -> tracking.RunContent:
    """One cell's MLflow run: settings as params, strided histories, final metrics."""
    frame = record.read_frame(trace)
    keep = frame[(frame["step"] % stride == 0) | (frame.index == len(frame) - 1)]
    history = [
        (name, float(value), int(step))
        for name in record.HISTORY
        for step, value in zip(keep["step"], keep[name], strict=True)
    ]
    finals = [(name, float(summary[name]), 0) for name in FINAL if summary.get(name) is not None]  # type: ignore[arg-type]
    diverged = {"diverged_reason": str(summary["diverged_reason"])} if summary["diverged"] else {}
    return tracking.RunContent(
        name=cell.name,
        key=key,
        params={k: str(v) for k, v in cell.settings().items()},
        tags={
            **tags,
            "cell": cell.name,
            "diverged": str(bool(summary["diverged"])).lower(),
            **diverged,
        },
        metrics=history + finals,
        artifacts=[trace, plot] if plot.exists() else [trace],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--env", type=Path, required=True, help="env.json of stage env")
    parser.add_argument("--traces", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--table", type=Path, required=True, help="compare.md, printed at the end")
    parser.add_argument("--plots", type=Path, required=True, help="compare's plots folder")
    parser.add_argument(
        "--report", type=Path, nargs="+", required=True, help="parent run artifacts"
    )
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
    uri = tracking.default_uri(root)
    with interrupt.exit_on_signal():
        try:
            outcome = _publish(args, p, root, uri)
        except tracking.TrackingError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(EXIT_TRACKING) from None
    print(args.table.read_text(encoding="utf-8"))
    print(f"MLflow ({uri}): {outcome.created} new cell runs, {outcome.present} already there.")
    print(tracking.ui_hint(uri, outcome.experiment_id))


def _publish(args: argparse.Namespace, p: params.Params, root: Path, uri: str) -> tracking.Outcome:
    cells = grid.cells(p.train)
    data = args.data.read_bytes()
    keys = {c.name: cell_key(c, data, (args.traces / f"{c.name}.csv").read_bytes()) for c in cells}
    reports = sorted(args.report) + sorted(args.plots.glob("*.png"))
    parent_key = digest(*(k.encode() for k in keys.values()), *(r.read_bytes() for r in reports))
    known = tracking.published_keys(uri, p.publish.experiment)
    if known and known[1].issuperset([*keys.values(), parent_key]):
        return tracking.Outcome(known[0], 0, len(cells))
    env = json.loads(args.env.read_text(encoding="utf-8"))
    tags = {
        **git_state(root),
        "torch_version": version("torch"),
        "data_hash": digest(data),
        **{f"env.{k}": str(v) for k, v in env.items()},
    }
    summaries = json.loads(args.metrics.read_text(encoding="utf-8"))
    contents = [
        cell_content(
            c,
            keys[c.name],
            args.traces / f"{c.name}.csv",
            args.plots / "cells" / f"{c.name}.png",
            summaries[c.name],
            tags,
            p.publish.stride,
        )
        for c in cells
    ]
    parent = tracking.RunContent(
        name=f"grid-{parent_key[:8]}",
        key=parent_key,
        tags=tags,
        artifacts=reports,
        params={
            "cells": str(len(cells)),
            "steps": str(p.train.steps),
            "stride": str(p.publish.stride),
        },
    )
    progress = partial(tqdm, desc="publish", unit="run")
    return tracking.publish(uri, p.publish.experiment, contents, parent, root, progress)


if __name__ == "__main__":
    main()
