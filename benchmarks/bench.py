"""Speed of gradlab on this machine: medians of several runs, never a pass/fail test.

  clean `dvc repro`   a fresh copy of the project's files (git's view of the working tree:
                      no DVC outputs, no cache, no mlflow.db): the grid and the default study
  grid share          the part of it the grid takes: its stages and its MLflow runs
  no-op `dvc repro`   the same copy again, nothing changed
  MLflow ingest       metric points per second through pipeline.tracking.store.publish (SQLite)
  peak memory         largest resident set of any process of the clean repros

Per stage (medians): each stage's wall time inside the clean `dvc repro`, from DVC's own
log (a stage's share ends when DVC has hashed and cached its outputs), so the stages and
DVC's overhead between them add up to the whole.

Usage: python benchmarks/bench.py [--runs 3]
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "PATH": f"{BIN}:{os.environ['PATH']}",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
ENV.pop("MLFLOW_TRACKING_URI", None)
TARGETS = {"clean": 60.0, "grid": 25.0, "noop": 1.2, "ingest": 9000.0, "memory": 2048.0}
GRID = ("env", "generate", "train", "compare", "walkthrough")  # and the grid's publishing
STAMP = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) DEBUG: Computed stage: '(?:[\w/.-]+:)?([\w-]+)'"
)
PUBLISH = re.compile(r"^  (grid|study): .* \((\d+\.\d+) s\)$", re.MULTILINE)


def fresh_copy(dest: Path) -> Path:
    """The project's files as git sees the working tree (tracked, or new and not ignored),
    as a new git repository: what a fresh clone of this work would hold."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    identity = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b"}
    identity |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=dest, check=True, env={**ENV, **identity}, capture_output=True)
    return dest


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    run = subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, run.stdout + run.stderr


def stage_times(log: str, started: datetime) -> dict[str, float]:
    """Each stage's seconds in a `dvc repro -v` log: from the previous stage's end (or the
    start) to DVC's "Computed stage" line of this one."""
    times, last = {}, started
    for line in log.splitlines():
        if found := STAMP.match(line):
            at = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
            times[found.group(2)] = (at - last).total_seconds()
            last = at
    return times


def clean_repro(project: Path) -> tuple[float, dict[str, float]]:
    """A clean `dvc repro -v`: its seconds, and each stage's (and publish's two parts)."""
    started = datetime.now()
    seconds, log = timed([str(BIN / "dvc"), "repro", "-v"], project)
    times = stage_times(log, started)
    times |= {f"publish {part}": float(s) for part, s in PUBLISH.findall(log)}
    return seconds, times


def ingest_rate(folder: Path, runs: int = 10, steps: int = 500, series: int = 8) -> float:
    """Metric points per second publishing `runs` runs of `series` x `steps` points each."""
    sys.path.insert(0, str(ROOT))
    from pipeline.tracking import store

    cells = [
        store.RunContent(
            name=f"cell{i}",
            key=f"bench-{i}",
            params={"lr": "0.1"},
            metrics=[(f"s{k}", float(step), step) for k in range(series) for step in range(steps)],
        )
        for i in range(runs)
    ]
    uri = f"sqlite:///{folder}/mlflow.db"
    parent = store.RunContent(name="warm-up", key="warm-up")
    store.publish(uri, "bench", [], parent, folder)  # database and experiment exist first
    start = time.perf_counter()
    store.publish(uri, "bench", cells, store.RunContent(name="grid", key="grid"), folder)
    return runs * steps * series / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="clean repros (no-op repros: 2x this)")
    args = parser.parse_args()
    clean, noop, ingest, stages = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="gradlab-bench-") as tmp:
        for i in range(args.runs):
            project = fresh_copy(Path(tmp) / f"p{i}")
            seconds, times = clean_repro(project)
            clean.append(seconds)
            stages.append(times)
            noop += [timed([str(BIN / "dvc"), "repro"], project)[0] for _ in range(2)]
            print(
                f"run {i + 1}/{args.runs}: clean {clean[-1]:.1f} s, "
                f"no-op {noop[-2]:.2f} / {noop[-1]:.2f} s",
                flush=True,
            )
            (Path(tmp) / f"i{i}").mkdir()
            ingest.append(ingest_rate(Path(tmp) / f"i{i}"))
    memory = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB
    per = {k: statistics.median(s.get(k, 0.0) for s in stages) for k in stages[0]}
    grid = sum(per.get(k, 0.0) for k in GRID) + per.get("publish grid", 0.0)
    rows = [
        ("clean dvc repro, grid + study (s)", statistics.median(clean), TARGETS["clean"], "<="),
        ("  the grid's share (s)", grid, TARGETS["grid"], "<="),
        ("no-op dvc repro (s)", statistics.median(noop), TARGETS["noop"], "<="),
        ("MLflow ingest (points/s)", statistics.median(ingest), TARGETS["ingest"], ">="),
        ("peak memory, largest process (MiB)", memory, TARGETS["memory"], "<="),
    ]
    print(f"\n{'measure':<38}{'median':>10}{'target':>12}  ok")
    for name, value, target, op in rows:
        ok = value <= target if op == "<=" else value >= target
        print(
            f"{name:<38}{value:>10.2f}{op + ' ' + format(target, 'g'):>12}  {'yes' if ok else 'NO'}"
        )
    print("\nper stage, clean repro (s): " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    print(
        f"{args.runs} clean, {len(noop)} no-op, {len(ingest)} ingest runs; {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
