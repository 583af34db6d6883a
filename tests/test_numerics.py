"""Where gradlab pins what decides the bits: ATen's kernel set, MKL's path, threads."""

import os
import subprocess
import sys

import pytest
import torch

from pipeline import numerics
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("flags", "arch", "expected"),
    [
        ({"avx2", "fma", "avx512f"}, "x86_64", "avx2"),
        ({"avx2", "fma"}, "x86_64", "avx2"),
        ({"avx", "sse4_2"}, "x86_64", "default"),  # the AVX2 kernels would crash here
        ({"asimd", "sve"}, "aarch64", "default"),
    ],
)
def test_capability_is_avx2_wherever_the_cpu_runs_it(
    flags: set[str], arch: str, expected: str
) -> None:
    """AVX2 kernels on every x86-64 CPU with AVX2 and FMA, ATen's portable ones elsewhere."""
    assert numerics.capability(flags, arch) == expected


def test_the_test_process_runs_the_pinned_kernels() -> None:
    """The suite pins kernels before torch loads, as the stages do, so tests see their bits."""
    assert os.environ["MKL_CBWR"] == numerics.MKL_CBWR
    assert torch.backends.cpu.get_cpu_capability().lower() in ("avx2", "default")


def test_a_stage_process_pins_kernels_before_torch_loads() -> None:
    """`python -m pipeline` sets ATEN_CPU_CAPABILITY before torch is imported: torch uses it."""
    code = (
        "import sys; from pipeline import __main__ as m; from pipeline import numerics;"
        "numerics.pin_kernels(); import torch, os;"
        "print(os.environ['ATEN_CPU_CAPABILITY'], torch.backends.cpu.get_cpu_capability())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env
    )

    pinned, used = run.stdout.split()
    assert run.returncode == 0 and pinned.lower() == used.lower()


def test_pin_sets_threads_and_deterministic_mode() -> None:
    """pin() sets torch's thread count and its deterministic-algorithms flag."""
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    try:
        numerics.pin(1, True)
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        numerics.pin(1, False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        numerics.pin(*before)
