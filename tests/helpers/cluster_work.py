"""Work functions for tests/run/test_cluster.py, importable by name in Dask worker processes.

torch is imported at the top on purpose: pipeline.run.cluster unpickles a work function only
after pinning the kernels, so importing this module in a worker must not beat the pins.
"""

import os
import time

import numpy as np
import numpy.typing as npt
import torch

Floats = npt.NDArray[np.float32]


def square_sum(chunk: Floats) -> float:
    return float(np.square(chunk, dtype=np.float64).sum())


def torch_rows(chunk: Floats) -> Floats:
    """A matrix product, a softmax and a reduction in torch: bits that follow the kernels
    and the thread count."""
    t = torch.from_numpy(chunk)
    return (t @ t.T).softmax(dim=1).sum(dim=0).numpy()


def pins(seconds: float) -> tuple[int, int, bool, str, str | None]:
    """(pid, torch threads, deterministic, ATen kernels, MKL_CBWR) of the process, after a
    nap that lets other workers take the next chunks."""
    time.sleep(seconds)
    return (
        os.getpid(),
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cpu.get_cpu_capability(),
        os.environ.get("MKL_CBWR"),
    )


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def die_once(chunk: tuple[str, Floats]) -> float:
    """square_sum of the data; but the first process to see a marker path creates it and
    dies on the spot, as a worker killed by the OOM killer would."""
    marker, data = chunk
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os._exit(1)
    return square_sum(data)


def fail(chunk: int) -> int:
    if chunk == 1:
        raise ValueError(f"chunk {chunk} is bad")
    return chunk
