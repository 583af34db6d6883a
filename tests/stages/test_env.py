"""Stage env: the fingerprint of what decides the numbers, and nothing that only describes
the machine."""

import json
from pathlib import Path

from pipeline import params
from pipeline.run import numerics
from pipeline.stages import env

AVX512 = {"sse4_2", "avx", "avx2", "fma", "avx512f"}
AMD, INTEL = "AuthenticAMD", "GenuineIntel"


def _env(p: params.Params) -> tuple[int, bool]:
    return p.env.threads, p.env.deterministic


def test_fingerprint_names_versions_threads_and_kernels(committed: params.Params) -> None:
    """The fingerprint holds library versions, the pinned thread count and the kernel set."""
    fp = numerics.fingerprint(*_env(committed), AVX512, "x86_64", AMD)

    assert {"python", "torch", "numpy", "pandas", "threads", "deterministic"} <= set(fp)
    assert fp["threads"] == committed.env.threads and str(fp["torch"]).startswith("2.13.0")
    assert fp["cpu_capability"] == "avx2" and fp["mkl_cbwr"] == "COMPATIBLE"


def test_machines_computing_the_same_bits_give_the_same_fingerprint(
    committed: params.Params,
) -> None:
    """An AVX-512 and an AVX2-only x86 CPU run the same pinned kernels: equal fingerprints;
    a CPU without AVX2 runs other kernels, and the fingerprint says so."""
    avx2_only = {"sse4_2", "avx", "avx2", "fma"}

    wide = numerics.fingerprint(*_env(committed), AVX512, "x86_64", AMD)
    narrow = numerics.fingerprint(*_env(committed), avx2_only, "x86_64", AMD)
    old = numerics.fingerprint(*_env(committed), {"sse4_2", "avx"}, "x86_64", AMD)

    assert wide == narrow
    assert old != wide and old["cpu_capability"] == "default"


def test_cpus_of_two_vendors_give_two_fingerprints(committed: params.Params) -> None:
    """MKL's vector math (torch's sqrt) follows the CPU vendor whatever gradlab pins: an
    AMD and an Intel CPU with the same flags are two environments."""
    amd = numerics.fingerprint(*_env(committed), AVX512, "x86_64", AMD)
    intel = numerics.fingerprint(*_env(committed), AVX512, "x86_64", INTEL)

    assert amd != intel and {k for k in amd if amd[k] != intel[k]} == {"cpu_vendor"}


def test_fingerprint_holds_nothing_that_only_describes_the_machine(
    committed: params.Params,
) -> None:
    """No CPU model, flag list, host or core count: they would dirty git on another machine."""
    fp = numerics.fingerprint(*_env(committed), AVX512, "x86_64", AMD)

    assert not {"cpu", "cpu_flags", "host", "cores", "os"} & set(fp)
    assert "avx512f" not in json.dumps(fp)


def test_main_writes_the_same_bytes_twice(tmp_path: Path) -> None:
    """Two runs on one machine give byte-identical env.json (no timestamps)."""
    out = tmp_path / "env.json"

    env.main(["--out", str(out)])
    first = out.read_bytes()
    env.main(["--out", str(out)])

    assert out.read_bytes() == first and json.loads(first)["deterministic"] is True


def test_installed_versions_are_importlibs() -> None:
    """installed() reads the same versions importlib.metadata.version gives, and says
    "not installed" for a package that is not."""
    from importlib.metadata import version

    found = numerics.installed((*numerics.PACKAGES, "no-such-package-xyz"))

    assert {n: found[n] for n in numerics.PACKAGES} == {n: version(n) for n in numerics.PACKAGES}
    assert found["no-such-package-xyz"] == "not installed"
