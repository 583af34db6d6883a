"""Stage `env`: fingerprint what shapes the numbers, so that changing it re-trains.

DVC does not notice a library upgrade; `train` depends on this file, so a new torch, a
new CPU or another thread count shows up as a changed dependency. It also validates the
whole params.yaml first: every stage depends on it, so bad params stop the pipeline
before DVC deletes any other stage's outputs.
"""

import argparse
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pipeline import atomic, params

PACKAGES = ("torch", "numpy", "pandas", "mlflow", "dvc", "matplotlib")
# CPU features that select different kernels (and so, possibly, different bits)
CPU_FLAGS = {
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "asimd",
    "sve",
    "sve2",
}


def cpu_flags(cpuinfo: str) -> list[str]:
    """Sorted kernel-relevant CPU flags found in /proc/cpuinfo text."""
    found: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found |= CPU_FLAGS & set(value.split())
    return sorted(found)


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def fingerprint(env: params.EnvParams, cpuinfo: str) -> dict[str, object]:
    """The environment fields that can change a result."""
    return {
        "python": platform.python_version(),
        **{name: package_version(name) for name in PACKAGES},
        "threads": env.threads,
        "deterministic": env.deterministic,
        "machine": platform.machine(),
        "cpu_flags": cpu_flags(cpuinfo),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    atomic.write_json(args.out, fingerprint(p.env, text))


if __name__ == "__main__":
    main()
