"""Speed of the batched engine: cell-steps per second of pipeline.engine.regression.train on one
thread, float32, 500 steps, cells mixing every loss x optimizer x clip of the default
grid (seeds varied); every step of every cell kept in memory up to 10^4 cells. Each run
is a fresh process (its peak resident memory is its own); the line shows medians.

Usage: python benchmarks/engine_bench.py [--runs 3] [--sizes 100 1000 10000 100000]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STEPS = 500
RECORD_UP_TO = 10_000  # beyond, every step of every cell would not fit: 10^5 cells is 1.8 GB


def one(n: int) -> dict[str, float]:
    """Train n mixed cells once; the rate, the time, and this process's peak memory."""
    from pipeline.run import numerics

    numerics.pin_kernels()  # as every stage does, before torch is imported
    import numpy as np
    import torch

    from pipeline import grid, params
    from pipeline.engine import regression
    from pipeline.grid import data

    torch.set_num_threads(1)
    p = params.load_or_exit(ROOT / "params.yaml")
    base = regression.Cells.from_grid(grid.cells(p.train))
    cells = base.take(np.arange(n) % len(base))
    cells = regression.Cells(**{**vars(cells), "seed": np.arange(n) % 1000})
    x, y = data.points(p.generate)
    record = np.arange(n) if n <= RECORD_UP_TO else ()
    start = time.perf_counter()
    result = regression.train(cells, x, y, STEPS, record=record)
    seconds = time.perf_counter() - start
    assert result.trace.shape == (len(record), STEPS, 9)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    return {"rate": n * STEPS / seconds, "seconds": seconds, "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000, 100_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child run
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    print(f"{'cells':>8} {'recorded':>9} {'M cell-steps/s':>15} {'seconds':>8} {'peak MiB':>9}")
    for n in args.sizes:
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--one", str(n)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            for _ in range(args.runs)
        ]
        rate, seconds, peak = (statistics.median(r[k] for r in runs) for k in runs[0])
        recorded = "all" if n <= RECORD_UP_TO else "none"
        print(f"{n:>8} {recorded:>9} {rate / 1e6:>15.2f} {seconds:>8.3f} {peak:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
