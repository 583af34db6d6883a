"""Speed of gradlab on this machine: medians of several runs, never a pass/fail test.

  clean `dvc repro`   a fresh copy of the project (no outputs, no cache, no mlflow.db)
  no-op `dvc repro`   the same copy again, nothing changed
  MLflow ingest       metric points per second through pipeline.tracking.publish (SQLite)
  peak memory         largest resident set of any process of the clean repro

Usage: python benchmarks/bench.py [--runs 3]
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SKIP = {".venv", ".git", "mlflow.db", "mlartifacts", "traces", "dvc_plots", ".pytest_cache"}
ENV = {
    **os.environ,
    "PATH": f"{BIN}:{os.environ['PATH']}",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
ENV.pop("MLFLOW_TRACKING_URI", None)
TARGETS = {"clean": 30.0, "noop": 1.5, "ingest": 9000.0, "memory": 1024.0}


def fresh_copy(dest: Path) -> Path:
    """The project's files without outputs, caches or MLflow store, as a new git repo."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(ROOT)
        skip = {n for n in names if n in SKIP or n.endswith(".gradlab-tmp")}
        if rel == Path(".dvc"):
            skip |= {"cache", "tmp"}
        return skip

    shutil.copytree(ROOT, dest, ignore=ignore)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(
            cmd,
            cwd=dest,
            check=True,
            env={
                **ENV,
                "GIT_AUTHOR_NAME": "b",
                "GIT_AUTHOR_EMAIL": "b@b",
                "GIT_COMMITTER_NAME": "b",
                "GIT_COMMITTER_EMAIL": "b@b",
            },
        )
    return dest


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def ingest_rate(folder: Path, runs: int = 10, steps: int = 500, series: int = 8) -> float:
    """Metric points per second publishing `runs` runs of `series` x `steps` points each."""
    sys.path.insert(0, str(ROOT))
    from pipeline import tracking

    cells = [
        tracking.RunContent(
            name=f"cell{i}",
            key=f"bench-{i}",
            params={"lr": "0.1"},
            metrics=[(f"s{k}", float(step), step) for k in range(series) for step in range(steps)],
        )
        for i in range(runs)
    ]
    uri = f"sqlite:///{folder}/mlflow.db"
    parent = tracking.RunContent(name="warm-up", key="warm-up")
    tracking.publish(uri, "bench", [], parent, folder)  # database and experiment exist first
    start = time.perf_counter()
    tracking.publish(uri, "bench", cells, tracking.RunContent(name="grid", key="grid"), folder)
    return runs * steps * series / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="clean repros (no-op repros: 2x this)")
    args = parser.parse_args()
    clean, noop, ingest = [], [], []
    with tempfile.TemporaryDirectory(prefix="gradlab-bench-") as tmp:
        for i in range(args.runs):
            project = fresh_copy(Path(tmp) / f"p{i}")
            clean.append(timed([str(BIN / "dvc"), "repro"], project))
            noop += [timed([str(BIN / "dvc"), "repro"], project) for _ in range(2)]
            print(
                f"run {i + 1}/{args.runs}: clean {clean[-1]:.1f} s, "
                f"no-op {noop[-2]:.2f} / {noop[-1]:.2f} s",
                flush=True,
            )
            (Path(tmp) / f"i{i}").mkdir()
            ingest.append(ingest_rate(Path(tmp) / f"i{i}"))
    memory = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB
    rows = [
        ("clean dvc repro (s)", statistics.median(clean), TARGETS["clean"], "<="),
        ("no-op dvc repro (s)", statistics.median(noop), TARGETS["noop"], "<="),
        ("MLflow ingest (points/s)", statistics.median(ingest), TARGETS["ingest"], ">="),
        ("peak memory, largest process (MiB)", memory, TARGETS["memory"], "<="),
    ]
    print(f"\n{'measure':<36}{'median':>12}{'target':>12}  ok")
    for name, value, target, op in rows:
        ok = value <= target if op == "<=" else value >= target
        print(
            f"{name:<36}{value:>12.2f}{op + ' ' + format(target, 'g'):>12}  {'yes' if ok else 'NO'}"
        )
    print(
        f"\n{args.runs} clean, {len(noop)} no-op, {len(ingest)} ingest runs; {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
