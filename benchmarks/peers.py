"""The fused kernel beside its peer, JAX + optax (benchmarks/peers/jax_peer.py, in its own
venv: `make bench-peers` builds .venv-peers from benchmarks/peers/requirements.txt), on
the speed workload (benchmarks/workload.py): the same cells, starts, data and settings,
float32, 500 steps, final parameters only. Both on the same single core, runs
interleaved (fused, JAX, fused, JAX, ...), CPU time, medians; JAX's compile time (its 84
programs per row) apart. Target (issue 17): the fused kernel >= 2x JAX on every row.

Usage: python benchmarks/peers.py --peer-python .venv-peers/bin/python [--runs 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import workload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peer-python", required=True, help="the peers venv's python")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(workload.SIZES))
    parser.add_argument("--points", type=int, nargs="+", default=list(workload.POINTS))
    args = parser.parse_args()
    core = sorted(os.sched_getaffinity(0))[0]
    os.sched_setaffinity(0, {core})  # one core, shared in turn with the peer
    from pipeline.run import numerics

    numerics.pin_kernels()
    import torch

    torch.set_num_threads(1)
    from pipeline.engine import regression
    from pipeline.engine.fused import regression as fused

    peer = subprocess.Popen(
        [args.peer_python, str(HERE / "peers" / "jax_peer.py"), str(core)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip

    def ask(**request: object) -> dict:
        assert peer.stdin is not None and peer.stdout is not None
        peer.stdin.write(json.dumps(request) + "\n")
        peer.stdin.flush()
        return json.loads(peer.stdout.readline())

    head = ("points", "cells", "fused M/s", "JAX M/s", "ratio", "JAX compile")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (6, 8, 10, 9, 6, 12), strict=True)))
    with tempfile.TemporaryDirectory() as tmp:
        for points in args.points:
            x, y = workload.data(points)
            for n in args.sizes:
                cells = workload.cells(n, points)
                start = regression.initial_parameters(cells.seed, torch.float32).numpy().T
                table = workload.table(n, points)
                path = Path(tmp) / "cells.npz"
                np.savez(path, x=x, y=y, start=start, **{
                    k: table[k] for k in ("loss", "optimizer", "clip", "lr", "dataset")
                })  # fmt: skip
                compiled = ask(do="load", path=str(path), steps=workload.STEPS)
                fused.train(cells, x, y, 2)  # the kernel loaded before timing
                ours, theirs = [], []
                for _ in range(args.runs):
                    begin = time.process_time()
                    fused.train(cells, x, y, workload.STEPS)
                    ours.append(time.process_time() - begin)
                    theirs.append(ask(do="run")["seconds"])
                work = n * workload.STEPS / 1e6
                ratio = statistics.median(j / f for f, j in zip(ours, theirs, strict=True))
                print(
                    f"{points:>6} {n:>8} {work / statistics.median(ours):>10.1f} "
                    f"{work / statistics.median(theirs):>9.1f} {ratio:>5.1f}x "
                    f"{compiled['compile']:>10.1f} s",
                    flush=True,
                )
    peer.stdin.close()  # type: ignore[union-attr]
    peer.wait()


if __name__ == "__main__":
    main()
