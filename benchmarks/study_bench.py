"""Speed of whole studies, end to end: `dvc repro` of the study's stages (data, the
batched engine's training and per-cell table, the analyses and report) and publishing
to a fresh MLflow store, for studies of about 10^4 ... 10^7 cells x 500 steps (the fused
engine, the study's default; its kernels compiled beforehand, as they are cached per
machine).

Each run of a size is a fresh copy of the project (the grid's stages are built first and
not timed) in its own process, so the peak resident memory is that run's own (the largest
process: a stage, a Dask worker or DVC). One line per size, times the medians of the runs,
memory the largest:
    study: N cells x S steps in T s (R cell-steps/s, peak RSS M MiB; per stage)
Targets: 10^6 cells <= 60 s, 10^7 cells <= 5 min and <= 2 GiB (issue 17; before it, issue
8's: 10^5 <= 60 s, 10^6 <= 5 min).

Usage: python benchmarks/study_bench.py [--runs 3] [--sizes 10000 100000 1000000]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import BIN, ENV, fresh_copy  # the same copy as the repro bench

SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
STAGES = ("generate", "study", "analysis", "publish")  # the study's, in dvc.yaml's order
# per size: lr points per decade, tuning seeds, engine workers (2 = both cores), and the
# scenarios (None: all six; the committed study is about 9 x 10^4 cells)
SHAPE = {
    10_000: (1, 3, 1, ["tutorial", "noisy"]),
    100_000: (5, 6, 2, None),
    1_000_000: (40, 10, 2, None),
    10_000_000: (40, 100, 2, None),
}


def sized(params: dict, n: int) -> dict:
    """The committed study, its lr grid, tuning seeds and scenarios scaled to about n cells."""
    per_decade, tune, workers, scenarios = SHAPE.get(n, (5, max(1, n // 15_000), 2, None))
    study = params["study"]
    if scenarios is not None:
        study["scenarios"] = scenarios
    study["lr"]["per_decade"] = per_decade
    study["seeds"]["tune"] = list(range(tune))
    study["seeds"]["report"] = list(range(100, 110))
    params["env"]["workers"] = workers
    return params


def one(n: int) -> dict[str, float]:
    """Build one study of about n cells in a fresh copy; its size, time and peak memory."""
    with tempfile.TemporaryDirectory(prefix="gradlab-study-bench-") as tmp:
        project = fresh_copy(Path(tmp) / "p")
        yaml = YAML()
        path = project / "params.yaml"
        params = yaml.load(path.read_text())
        with path.open("w") as f:
            yaml.dump(sized(params, n), f)
        dvc = [str(BIN / "dvc"), "repro", "--quiet"]
        subprocess.run(
            [*dvc, "compare", "walkthrough"], cwd=project, env=ENV, check=True, capture_output=True
        )
        stages = {}
        for stage in STAGES:  # one at a time, so each one's seconds are known
            start = time.perf_counter()
            subprocess.run(
                [*dvc, "--single-item", stage],
                cwd=project,
                env=ENV,
                check=True,
                capture_output=True,
            )
            stages[stage] = time.perf_counter() - start
        import pyarrow.parquet as pq

        tables = ("cells", "classes")  # regression and classification cells
        cells = sum(
            pq.read_metadata(project / f"reports/study/{name}.parquet").num_rows for name in tables
        )
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB
    return {"cells": cells, "seconds": sum(stages.values()), "rss": rss, **stages}


def one_process(n: int) -> dict[str, float]:
    """one(n) in a process of its own (its peak memory is its own); its error, if any."""
    run = subprocess.run(
        [sys.executable, __file__, "--one", str(n)], capture_output=True, text=True
    )
    if run.returncode != 0:
        raise SystemExit(f"error: the {n}-cell study failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--runs", type=int, default=3, help="runs per size (medians)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a size, in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    steps = YAML(typ="safe").load(
        (Path(__file__).resolve().parents[1] / "params.yaml").read_text()
    )["study"]["steps"]
    found = {}
    for n in args.sizes:
        runs = [one_process(n) for _ in range(args.runs)]
        r = found[n] = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        r["rss"] = max(run["rss"] for run in runs)
        rate = r["cells"] * steps / r["seconds"]
        print(
            f"study: {r['cells']} cells x {steps} steps in {r['seconds']:.1f} s "
            f"({rate / 1e6:.2f} M cell-steps/s, peak RSS {r['rss']:.0f} MiB; "
            + ", ".join(f"{s} {r[s]:.1f} s" for s in STAGES)
            + ")",
            flush=True,
        )
    if 1_000_000 in found and 10_000_000 in found:
        ratio = found[10_000_000]["seconds"] / found[1_000_000]["seconds"]
        print(f"10^7 / 10^6 time: {ratio:.1f}x")


if __name__ == "__main__":
    main()
