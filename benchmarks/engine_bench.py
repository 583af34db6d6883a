"""Speed of the engines on one core: the fused kernel (pipeline.engine.fused) and the exact
engine (pipeline.engine.regression, bit-identical to torch.optim) on the workload of
benchmarks/workload.py, in one process pinned to one core, runs interleaved (fused,
exact, fused, exact, ...) so that both see the same load; CPU time, medians.

One line per row (points, cells): each engine's M cell-steps/s and the ratio. The
fused kernel's compile (or cache load) is timed first, apart. Target (issue 17): the
fused kernel >= 150 M cell-steps/s on the mix, >= 30x the exact engine.

Usage: python benchmarks/engine_bench.py [--runs 3] [--sizes 10000 100000] [--points 20 3]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload


def seconds(train, *args) -> float:
    """CPU seconds of one call (every thread of this process)."""
    start = time.process_time()
    train(*args)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(workload.SIZES))
    parser.add_argument("--points", type=int, nargs="+", default=list(workload.POINTS))
    parser.add_argument("--exact-up-to", type=int, default=100_000, help="larger: fused only")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    from pipeline.run import numerics

    numerics.pin_kernels()
    import torch

    torch.set_num_threads(1)
    from pipeline.engine import regression
    from pipeline.engine.fused import regression as fused

    start = time.perf_counter()
    x, y = workload.data(20)
    fused.train(workload.cells(100, 20), x, y, 2)  # compiles, or loads from the cache
    print(f"fused kernel: compile or cache load {time.perf_counter() - start:.1f} s", flush=True)
    print(f"{'points':>6} {'cells':>8} {'fused M/s':>10} {'exact M/s':>10} {'ratio':>6}")
    for points in args.points:
        x, y = workload.data(points)
        for n in args.sizes:
            cells = workload.cells(n, points)
            work = n * workload.STEPS / 1e6
            runs: dict[str, list[float]] = {"fused": [], "exact": []}
            for _ in range(args.runs):
                runs["fused"].append(seconds(fused.train, cells, x, y, workload.STEPS))
                if n <= args.exact_up_to:
                    runs["exact"].append(seconds(regression.train, cells, x, y, workload.STEPS))
            rate = {k: work / statistics.median(v) if v else float("nan") for k, v in runs.items()}
            ratios = [e / f for f, e in zip(runs["fused"], runs["exact"], strict=False)]
            ratio = statistics.median(ratios) if ratios else float("nan")
            print(
                f"{points:>6} {n:>8} {rate['fused']:>10.1f} {rate['exact']:>10.2f} {ratio:>5.0f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
