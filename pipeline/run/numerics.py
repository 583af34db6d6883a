"""What decides the bits of the numbers torch computes, and where gradlab pins it.

PyTorch promises identical results only for one release, platform and thread count
(docs: notes/randomness). Two more choices follow the CPU unless pinned: ATen runs the
vectorised kernels of the best instruction set it detects (AVX-512 or AVX2), and MKL,
which computes nn.Linear's matrix products, picks its own code path per CPU model. Seen
here: the same grid trained on two AVX-512 machines of different models gave different
bits in 50 of 84 cells. Pinning ATen to AVX2 and MKL to its conditional numerical
reproducibility mode makes every x86-64 machine with AVX2 compute the same bits.
Both are read when torch first needs them, so they are set before torch is imported
(`python -m pipeline` does it; so does the test suite).
"""

import os
import platform
import re
import sys

from pipeline.run import machine

CPU_CAPABILITY = "avx2"  # ATEN_CPU_CAPABILITY: the widest kernels every recent x86-64 runs
MKL_CBWR = "COMPATIBLE"  # MKL_CBWR: the same MKL code path on every CPU (Intel or AMD)


def capability(cpu_flags: set[str], arch: str) -> str:
    """The ATen kernel set gradlab pins on a CPU with these flags: the AVX2 kernels where
    the CPU runs them (they need AVX2 and FMA), else ATen's portable default ones. (ATen
    does not check that a CPU supports the kernels it is told to use.)"""
    if arch in ("x86_64", "AMD64") and {"avx2", "fma"} <= cpu_flags:
        return CPU_CAPABILITY
    return "default"


def pin_kernels() -> None:
    """Pin ATen's and MKL's kernel choice; call before `import torch`."""
    flags = machine.cpu_flags(machine.cpuinfo())
    os.environ["ATEN_CPU_CAPABILITY"] = capability(flags, platform.machine())
    os.environ["MKL_CBWR"] = MKL_CBWR


def pin(threads: int, deterministic: bool) -> None:
    """Fix what else changes the bits: the thread count and deterministic kernels."""
    import torch

    torch.set_num_threads(threads)
    # torch.use_deterministic_algorithms(mode) sets this flag of the eager kernels and also
    # torch._inductor.config.deterministic, whose import loads torch._dynamo (0.9 s per
    # process, measured) for torch.compile, which gradlab never runs. Set the kernels'
    # flag; inductor's only where something already loaded it.
    torch._C._set_deterministic_algorithms(deterministic, warn_only=False)
    if (inductor := sys.modules.get("torch._inductor.config")) is not None:
        inductor.deterministic = deterministic  # type: ignore[attr-defined]


# the libraries whose versions decide a byte of an output: numbers (torch, numpy; numba and
# llvmlite compile the study's fused kernels), their text (pandas writes the CSVs), the
# tables (pyarrow writes the parquet files), the plots (matplotlib), the graph (torchviz)
PACKAGES = (
    "torch", "numpy", "numba", "llvmlite", "pandas", "pyarrow", "matplotlib", "torchviz",
)  # fmt: skip
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


def fingerprint(
    threads: int, deterministic: bool, cpu_flags: set[str], arch: str, vendor: str
) -> dict[str, object]:
    """The environment fields that decide results: params' env.threads and
    env.deterministic, versions, and the kernels this CPU runs. `vendor`: the CPU's
    (machine.cpu_vendor): torch computes elementwise float math (sqrt, exp, log) with MKL's
    vector math library, whose kernels follow the CPU vendor and, off Intel, ignore MKL_CBWR
    (seen: the same torch.sqrt inputs round differently on AMD and Intel machines, so Adam,
    RMSprop and Adagrad cells train to other bits). A machine of another vendor is another
    environment."""
    return {
        "python": platform.python_version(),
        **installed(PACKAGES),
        "threads": threads,
        "deterministic": deterministic,
        "machine": arch,
        "cpu_capability": capability(cpu_flags, arch),
        "mkl_cbwr": MKL_CBWR,
        "cpu_vendor": vendor,
    }
