"""What describes the machine but does not decide a number: CPU model and flags, host.

Recorded where a reader looks for it (MLflow tags, the drift report) and never in a
file DVC or git tracks, so a fresh clone on another machine ends with a clean git status.
What does decide the numbers is the `env` stage's fingerprint (pipeline.stages.env).
"""

import os
import platform
import socket
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpuinfo() -> str:
    """The text of /proc/cpuinfo, or "" where there is none (macOS, Windows)."""
    return CPUINFO.read_text() if CPUINFO.exists() else ""


def cpu_flags(text: str) -> set[str]:
    """Every CPU flag of /proc/cpuinfo text (x86 `flags`, Arm `Features`)."""
    found: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found |= set(value.split())
    return found


def cpu_vendor(text: str) -> str:
    """The CPU's vendor as /proc/cpuinfo names it (GenuineIntel, AuthenticAMD), else the
    architecture's name (a vendor of its own where there is no cpuinfo)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("vendor_id", "CPU implementer"):
            return value.strip()
    return platform.machine() or "unknown"


def cpu_model(text: str) -> str:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "cpu model"):
            return value.strip()
    return platform.processor() or "unknown"


# the flags that pick kernels (a subset of the dozens /proc/cpuinfo lists)
VECTOR_FLAGS = (
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
    "asimd",
    "sve",
    "sve2",
)


def describe(text: str) -> dict[str, str]:
    """The machine in a few fields: CPU model, its vector extensions, cores, host, OS."""
    flags = cpu_flags(text)
    return {
        "cpu": cpu_model(text),
        "cpu_flags": " ".join(f for f in VECTOR_FLAGS if f in flags),
        "cores": str(os.cpu_count()),
        "host": socket.gethostname(),
        "os": platform.platform(),
    }
