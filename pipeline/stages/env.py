"""Stage `env`: fingerprint what decides the numbers, so that changing it re-trains.

DVC does not notice a library upgrade; every stage depends on this file, so a new
torch, another thread count or a CPU that runs other kernels shows up as a changed
dependency. Only what decides numbers is here (pipeline.run.numerics); what merely
describes the machine (CPU model, host) is not, so another machine computing the same
bits leaves this file, dvc.lock and git status unchanged. The stage also validates the
whole params.yaml first: bad params stop the pipeline before DVC deletes any other
stage's outputs.
"""

import argparse
import os
import platform
import re
import sys
from pathlib import Path

from pipeline import params
from pipeline.files import atomic
from pipeline.run import machine, numerics

# the libraries whose versions decide a byte of an output: numbers (torch, numpy), their
# text (pandas writes the CSVs), the tables (pyarrow writes the parquet files), the plots
# (matplotlib), the graph (torchviz)
PACKAGES = ("torch", "numpy", "pandas", "pyarrow", "matplotlib", "torchviz")
DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info$")


def installed(names: tuple[str, ...]) -> dict[str, str]:
    """Each package's installed version ("not installed" if none), read from the names of
    the *.dist-info folders on sys.path, first found first: what importlib.metadata.version
    says, with one directory listing per path entry instead of one search per package."""
    wanted = {re.sub(r"[-_.]+", "_", n).lower(): n for n in names}
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in listing:
            if (m := DIST_INFO.match(folder)) is not None:
                key = re.sub(r"[-_.]+", "_", m["name"]).lower()
                if key in wanted and wanted[key] not in found:
                    found[wanted[key]] = m["version"]
    return {n: found.get(n, "not installed") for n in names}


def fingerprint(env: params.EnvParams, cpu_flags: set[str], arch: str) -> dict[str, object]:
    """The environment fields that decide results."""
    return {
        "python": platform.python_version(),
        **installed(PACKAGES),
        "threads": env.threads,
        "deterministic": env.deterministic,
        "machine": arch,
        "cpu_capability": numerics.capability(cpu_flags, arch),
        "mkl_cbwr": numerics.MKL_CBWR,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    flags = machine.cpu_flags(machine.cpuinfo())
    atomic.write_json(args.out, fingerprint(p.env, flags, platform.machine()))
