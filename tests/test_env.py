"""Stage env: the environment fingerprint that `train` depends on."""

import json
from pathlib import Path

from pipeline import env, params

CPUINFO = (
    "processor : 0\nflags : fpu sse4_2 avx avx2 fma avx512f\nprocessor : 1\nflags : fpu sse4_2\n"
)


def test_cpu_flags_keeps_kernel_relevant_flags_only() -> None:
    """Only flags that select kernels are kept, sorted and unique."""
    assert env.cpu_flags(CPUINFO) == ["avx", "avx2", "avx512f", "fma", "sse4_2"]
    assert env.cpu_flags("Features : fp asimd sve\n") == ["asimd", "sve"]


def test_fingerprint_names_versions_threads_and_cpu(committed: params.Params) -> None:
    """The fingerprint holds library versions, the pinned thread count and the CPU."""
    fp = env.fingerprint(committed.env, CPUINFO)
    assert {"python", "torch", "numpy", "pandas", "mlflow", "dvc", "machine", "cpu_flags"} <= set(
        fp
    )
    assert fp["threads"] == committed.env.threads and fp["torch"].startswith("2.13.0")


def test_main_writes_the_same_bytes_twice(tmp_path: Path) -> None:
    """Two runs on one machine give byte-identical env.json (no timestamps)."""
    out = tmp_path / "env.json"
    env.main(["--out", str(out)])
    first = out.read_bytes()
    env.main(["--out", str(out)])
    assert out.read_bytes() == first and json.loads(first)["deterministic"] is True
