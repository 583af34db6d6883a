"""Where gradlab pins what decides the bits: ATen's kernel set, MKL's path, threads."""

import os
import subprocess
import sys

import pytest
import torch

from pipeline.run import machine, numerics
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
        "import sys; from pipeline import __main__ as m; from pipeline.run import numerics;"
        "numerics.pin_kernels(); import torch, os;"
        "print(os.environ['ATEN_CPU_CAPABILITY'], torch.backends.cpu.get_cpu_capability())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env
    )

    pinned, used = run.stdout.split()
    assert run.returncode == 0 and pinned.lower() == used.lower()


# Trains every committed cell for 60 steps and prints a digest of all traces; pins the
# kernels first unless told not to, as `python -m pipeline` does.
TRAIN_GRID = """
import hashlib, os, sys
from pathlib import Path
from pipeline.run import machine, numerics
if os.environ.get("PIN") == "1":
    numerics.pin_kernels()
import torch
from dataclasses import replace
from pipeline import grid, params
from pipeline.grid import trace, reference
numerics.pin(1, True)
x = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
cells = grid.cells(params.load(Path("params.yaml")).train)
text = "".join(
    trace.to_frame(reference.train_cell(replace(c, steps=60), x, 2 * x)).to_csv()
    for c in cells
)
print(hashlib.sha256(text.encode()).hexdigest())
"""


def grid_digest(pin: bool, **environ: str) -> str:
    """The digest of the committed grid's traces trained in a fresh process."""
    unset = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {"PIN": "1" if pin else "0", "PYTHONPATH": str(ROOT), **environ}
    run = subprocess.run(
        [sys.executable, "-c", TRAIN_GRID], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_a_cpu_with_narrower_vector_units_computes_the_same_bits() -> None:
    """MKL limited to AVX2 (as on a CPU without AVX-512) trains the grid to the same bits as
    MKL free to use everything, once gradlab's pins are in place. Without them, on an Intel
    AVX-512 machine, the two differ: the pins are what keeps one dvc.lock for every machine
    of a vendor. (Elsewhere MKL ignores the limit, and both runs are alike anyway.)"""
    narrow = {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    text = machine.cpuinfo()

    assert grid_digest(pin=True) == grid_digest(pin=True, **narrow)
    if "avx512f" in machine.cpu_flags(text) and machine.cpu_vendor(text) == "GenuineIntel":
        assert grid_digest(pin=False) != grid_digest(pin=False, **narrow)


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
