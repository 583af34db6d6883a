"""What describes the machine: CPU flags and model read from /proc/cpuinfo text."""

import platform

from pipeline.run import machine

CPUINFO = (
    "processor : 0\nmodel name : Example CPU 9000\nflags : fpu sse4_2 avx avx2 fma avx512f\n"
    "processor : 1\nmodel name : Example CPU 9000\nflags : fpu sse4_2\n"
)


def test_cpu_flags_are_the_union_over_processors() -> None:
    """Every x86 `flags` and Arm `Features` entry is found, once."""
    assert machine.cpu_flags(CPUINFO) == {"fpu", "sse4_2", "avx", "avx2", "fma", "avx512f"}
    assert machine.cpu_flags("Features : fp asimd sve\n") == {"fp", "asimd", "sve"}


def test_describe_names_the_model_and_only_kernel_relevant_flags() -> None:
    """describe() gives the CPU model, its vector extensions in a fixed order, and the host."""
    found = machine.describe(CPUINFO)

    assert found["cpu"] == "Example CPU 9000"
    assert found["cpu_flags"] == "sse4_2 avx avx2 fma avx512f"
    assert {"cores", "host", "os"} <= set(found)


def test_the_cpu_vendor_is_read_from_cpuinfo() -> None:
    """vendor_id as /proc/cpuinfo gives it; without one, the architecture's name."""
    assert machine.cpu_vendor("processor\t: 0\nvendor_id\t: AuthenticAMD\n") == "AuthenticAMD"
    assert machine.cpu_vendor("") == platform.machine()
