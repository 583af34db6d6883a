"""Where work runs: in this process, in this machine's processes, on a real Dask cluster;
the same bits, in order."""

import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from pipeline.run import cluster, interrupt, machine, numerics
from pipeline.run.cluster import ClusterError, Where, map_chunks
from tests.conftest import ROOT, sandbox_env
from tests.helpers import cluster_work
from tests.helpers.dask_cluster import survivors
from tests.helpers.servers import HOST, free_port

CHUNKS = [np.random.default_rng(seed).standard_normal((40, 8), np.float32) for seed in range(10)]
# what torch.backends.cpu.get_cpu_capability() says once gradlab's kernel pin took effect
KERNELS = numerics.capability(machine.cpu_flags(machine.cpuinfo()), platform.machine()).upper()
STARTUP_S = 60  # a `dask worker` takes ~2 s to join on an idle 2-core machine


@pytest.fixture(autouse=True)
def _torch_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No developer's cluster; and the test process keeps its torch settings (in-process
    chunks pin them)."""
    monkeypatch.delenv(cluster.ADDRESS_ENV, raising=False)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def same_bits(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(a, b, strict=True)
    )


def new_children(before: set[int]) -> list[psutil.Process]:
    """Our child processes started since `before`, except multiprocessing's resource
    tracker, which lives as long as this process once anything was spawned."""
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())
    ]


def test_in_process_results_come_in_chunk_order() -> None:
    """Where() computes every chunk here, in order, with the pinned thread count."""
    results = list(map_chunks(cluster_work.square_sum, CHUNKS, Where()))
    [(pid, *pins)] = map_chunks(cluster_work.pins, [0.0], Where(threads=1))

    assert results == [cluster_work.square_sum(c) for c in CHUNKS]
    assert (pid, *pins) == (os.getpid(), 1, True, KERNELS, "COMPATIBLE")


def test_the_in_process_path_does_not_import_dask(tmp_path: Path) -> None:
    """With one worker and no scheduler, neither dask nor distributed is imported."""
    code = (
        "import sys, numpy as np\n"
        "from pipeline.run import cluster, numerics\n"
        "numerics.pin_kernels()\n"
        "from tests.helpers import cluster_work\n"
        "chunks = [np.ones(3, np.float32)] * 3\n"
        "results = cluster.map_chunks(cluster_work.square_sum, chunks, cluster.Where())\n"
        "assert list(results) == [3.0] * 3\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    env = sandbox_env(tmp_path, PYTHONPATH=str(ROOT))

    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)

    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


@pytest.mark.slow
def test_local_processes_compute_the_same_bits_in_the_same_order() -> None:
    """This process and a spawned one give bit-identical arrays, in chunk order, as this
    process alone."""
    here = list(map_chunks(cluster_work.torch_rows, CHUNKS, Where()))

    there = list(map_chunks(cluster_work.torch_rows, CHUNKS, Where(workers=2)))

    assert same_bits(here, there)


@pytest.mark.slow
def test_every_local_process_pins_threads_and_kernels() -> None:
    """This process and the spawned one compute with `threads` threads, deterministic
    algorithms and the pinned ATen/MKL kernels."""
    seen = list(map_chunks(cluster_work.pins, [0.5] * 6, Where(workers=2, threads=2)))

    assert {s[1:] for s in seen} == {(2, True, KERNELS, "COMPATIBLE")}
    assert len({s[0] for s in seen}) == 2 and os.getpid() in {s[0] for s in seen}


@pytest.mark.slow
def test_a_real_cluster_computes_the_same_bits(
    scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks sent to a running scheduler, by address or by DASK_SCHEDULER_ADDRESS, come
    back bit-identical and in order, computed on both workers with the pins."""
    here = list(map_chunks(cluster_work.torch_rows, CHUNKS, Where()))

    by_address = list(map_chunks(cluster_work.torch_rows, CHUNKS, Where(scheduler=scheduler)))
    monkeypatch.setenv(cluster.ADDRESS_ENV, scheduler)
    by_env = list(map_chunks(cluster_work.torch_rows, CHUNKS, Where()))
    seen = list(map_chunks(cluster_work.pins, [0.3] * 4, Where()))

    assert same_bits(here, by_address) and same_bits(here, by_env)
    assert {s[1:] for s in seen} == {(1, True, KERNELS, "COMPATIBLE")}
    assert len({s[0] for s in seen}) == 2 and os.getpid() not in {s[0] for s in seen}


@pytest.mark.slow
def test_a_chunk_whose_worker_dies_is_run_again_elsewhere(scheduler: str, tmp_path: Path) -> None:
    """A Dask worker that dies mid-chunk costs nothing: every result comes back, right.
    (This machine's processes: tests/run/test_local.py.)"""
    marker = tmp_path / "died"
    chunks = [(str(marker) if i == 2 else "", c) for i, c in enumerate(CHUNKS[:5])]

    results = list(map_chunks(cluster_work.die_once, chunks, Where(scheduler=scheduler)))

    assert marker.exists()  # a worker did die
    assert results == [cluster_work.square_sum(c) for c in CHUNKS[:5]]


FAILED = "chunks[1] (of 3) failed on every try: ValueError: chunk 1 is bad"


def test_a_chunk_that_fails_in_process_raises_one_clear_error() -> None:
    """A chunk raising here ends the iteration with a ClusterError naming it."""
    with pytest.raises(ClusterError) as raised:
        list(map_chunks(cluster_work.fail, [0, 1, 2], Where()))

    assert str(raised.value) == FAILED


@pytest.mark.slow
def test_a_chunk_that_keeps_failing_on_a_cluster_raises_the_same_error(scheduler: str) -> None:
    """A chunk raising on every try of a cluster ends with the ClusterError it gives here."""
    with pytest.raises(ClusterError) as raised:
        list(map_chunks(cluster_work.fail, [0, 1, 2], Where(scheduler=scheduler)))

    assert str(raised.value) == FAILED


def test_an_unreachable_scheduler_fails_fast_naming_its_address() -> None:
    """No scheduler at the address: a ClusterError within seconds saying where and what to do."""
    address = f"tcp://{HOST}:{free_port()}"
    start = time.monotonic()

    with pytest.raises(ClusterError) as raised:
        list(map_chunks(cluster_work.square_sum, CHUNKS, Where(scheduler=address)))

    assert time.monotonic() - start < 10
    message = str(raised.value)
    assert address in message and "dask scheduler" in message and "\n" not in message


@pytest.mark.slow
@pytest.mark.parametrize("by", ["progress", "caller"])
def test_an_interrupt_stops_the_local_processes_at_once(by: str) -> None:
    """KeyboardInterrupt from the progress callback, or Terminated raised by the caller
    between results, cancels the rest; no worker process outlives it by more than ~2 s."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    workers: list[psutil.Process] = []
    raised: list[float] = []

    def progress(done: int, total: int) -> None:
        workers.extend(new_children(before))
        if by == "progress":
            raised.append(time.monotonic())
            raise KeyboardInterrupt

    chunks = [0.0, 60.0, 60.0, 60.0]  # the first comes back at once, the others never do
    with pytest.raises((KeyboardInterrupt, interrupt.Terminated)):
        for _ in map_chunks(cluster_work.nap, chunks, Where(workers=3), progress):
            raised.append(time.monotonic())
            raise interrupt.Terminated

    assert time.monotonic() - raised[0] < 2
    assert len(workers) >= 2  # the worker processes were there
    assert not survivors(workers, timeout=1) and not new_children(before)


def test_a_malformed_address_fails_at_once_and_the_process_exits(tmp_path: Path) -> None:
    """DASK_SCHEDULER_ADDRESS=nonsense: one ClusterError line, and the process is gone in
    seconds (a half-made Dask Client must not hold up its exit)."""
    code = (
        "from pipeline.run import cluster, numerics\n"
        "numerics.pin_kernels()\n"
        "from tests.helpers import cluster_work\n"
        "list(cluster.map_chunks(cluster_work.square_sum, [1.0, 2.0], cluster.Where()))\n"
    )
    env = sandbox_env(tmp_path, PYTHONPATH=str(ROOT), **{cluster.ADDRESS_ENV: "nonsense"})
    start = time.monotonic()

    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)

    assert time.monotonic() - start < 8  # importing torch and distributed takes ~2 s
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and last.startswith("pipeline.run.cluster.ClusterError: ")
    assert "nonsense" in last and f"unset {cluster.ADDRESS_ENV}" in last


@pytest.mark.slow
def test_ctrl_c_stops_work_on_local_processes(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while work runs on
    this machine's processes: exit 130 within seconds, no worker process left behind."""
    code = (
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a foreground shell\n"
        "from pipeline.run import cluster, interrupt, numerics\n"
        "numerics.pin_kernels()\n"
        "from tests.helpers import cluster_work\n"
        "with interrupt.exit_on_signal():\n"
        "    chunks = [0.0, 60.0, 60.0]\n"
        "    for _ in cluster.map_chunks(cluster_work.nap, chunks, cluster.Where(workers=2)):\n"
        "        print('first', flush=True)\n"
    )
    env = sandbox_env(tmp_path, PYTHONPATH=str(ROOT))
    with open(tmp_path / "stderr.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"first\n"
        children = psutil.Process(proc.pid).children(recursive=True)
        start = time.monotonic()

        os.killpg(proc.pid, signal.SIGINT)
        returncode = proc.wait(timeout=10)

        assert returncode == interrupt.EXIT_SIGINT and time.monotonic() - start < 5
        assert not survivors(children, timeout=2)
        assert "interrupted (SIGINT)" in (tmp_path / "stderr.log").read_text()
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
