"""Stage `env`: fingerprint what decides the numbers, so that changing it re-trains.

DVC does not notice a library upgrade; every stage depends on this file, so a new
torch, another thread count or a CPU that runs other kernels shows up as a changed
dependency. Only what decides numbers is here (pipeline.run.numerics); what merely
describes the machine (CPU model, host) is not, so another machine computing the same
bits leaves this file, dvc.lock and git status unchanged. The stage also validates the
whole params.yaml first, and estimates the work it asks for against env.budget
(pipeline.run.budget): bad params, or a run of days, stop the pipeline before DVC deletes
any other stage's outputs.

Being the stage that runs on every `dvc repro`, it also checks that the MLflow store still
holds every run publish's receipt names, and deletes the receipt when it does not, so that
DVC runs publish again (pipeline.tracking.receipt).

With --memo, the stage keeps what it needs from a valid params.yaml (the thread count and
determinism) under the digest of params.yaml and every module of the package
(pipeline.files.memo), and validates again only when one of them changed: pydantic and the
schema cost about 0.15 s of every no-op `dvc repro` otherwise.
"""

import argparse
import platform
import sys
from pathlib import Path

from pipeline import lazy
from pipeline.files import atomic, memo
from pipeline.run import machine, numerics
from pipeline.tracking import location, receipt

budget = lazy.module("pipeline.run.budget")  # pydantic: loaded only when the memo cannot answer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--receipt", type=Path, help="publish's: dropped if MLflow lacks a run")
    parser.add_argument("--memo", type=Path, help="where a valid params.yaml's settings are kept")
    args = parser.parse_args(argv)
    inputs = [args.params, *memo.sources()]
    settings = memo.recalled(args.memo, inputs, lambda: budget.checked(args.params))
    uri = location.default_uri(location.root())
    if args.receipt and (note := receipt.check(args.receipt, uri)):
        print(note, file=sys.stderr)
    text = machine.cpuinfo()
    found = numerics.fingerprint(
        settings["threads"],
        settings["deterministic"],
        machine.cpu_flags(text),
        platform.machine(),
        machine.cpu_vendor(text),
    )
    atomic.write_json(args.out, found)
