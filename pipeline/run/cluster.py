"""Where the chunks of a study run, with results coming back in chunk order wherever it is.

- `Where()` (workers=1, no scheduler): every chunk runs in this process, one after the
  other; Dask is not even imported (the fast path for small studies).
- `Where(workers=n)`: a `distributed.LocalCluster` of n single-threaded worker processes
  on 127.0.0.1, started for this call and closed after it.
- `Where(scheduler="tcp://host:8786")`, or DASK_SCHEDULER_ADDRESS in the environment: a
  running Dask cluster, which stays up afterwards.

The same bits wherever a chunk runs: each chunk runs behind `_pinned`, which in each
process pins the ATen and MKL kernels before torch is imported, then the thread count and
deterministic kernels (pipeline.run.numerics), and refuses a process whose torch release or
kernel set differs from the caller's. The work and the chunk travel as pickled bytes,
unpickled only after the pins, so unpickling cannot import torch first. An external
worker thus needs no special environment, only the caller's checkout (the same commit:
nothing checks it) and venv. A cluster on 127.0.0.1 (use a LAN address to share it):

    dask scheduler --host 127.0.0.1 --port 8786 --dashboard-address 127.0.0.1:8787
    cd /path/to/gradlab && source .venv/bin/activate
    PYTHONPATH=$PWD dask worker tcp://127.0.0.1:8786 --host 127.0.0.1 --nthreads 1 --nworkers 2

`--dashboard-address`: without it the scheduler serves HTTP on 0.0.0.0:8787, even with
`--no-dashboard`. `--nthreads 1`: torch's settings are per process, so one chunk at a
time per process. No `--preload` that imports torch. A process that starts a
LocalCluster must guard its entry point with `if __name__ == "__main__":` (as
`python -m pipeline` does): workers are spawned, which re-imports the main module.

A chunk whose worker dies is run again on another (the scheduler's
`distributed.scheduler.allowed-failures`, 3 by default); one that raises is retried
RETRIES times; then `ClusterError` names it. On KeyboardInterrupt or Terminated
(pipeline.run.interrupt) the chunks not yet done are cancelled and our LocalCluster killed
within about a second; chunks already running on an external cluster finish there unseen.
"""

import asyncio
import gc
import importlib.metadata
import logging
import os
import pickle
import platform
import socket
import sys
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, TypeVar, cast

from pipeline.run import interrupt, machine, numerics

if TYPE_CHECKING:
    from distributed import Client, Future, LocalCluster, Nanny

C = TypeVar("C")
R = TypeVar("R")

ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT_S = 5  # Dask's default, 30 s, is long to wait for a typo in an address
WORKERS_TIMEOUT_S = 30  # a scheduler with no workers would otherwise hang the study silently
RETRIES = 2  # for a chunk that raises: a transient error (memory, disk) may pass elsewhere
CLOSE_TIMEOUT_S = 0.5  # Dask waits 4 s for a running chunk that no one wants any more
WINDOW = 2  # chunks in flight per worker thread: none idles, few results wait on workers


class ClusterError(Exception):
    """A chunk failed wherever it ran, or the cluster could not be reached."""


@dataclass(frozen=True)
class Where:
    """Where chunks run. `workers` is ignored when a scheduler is used."""

    scheduler: str | None = None  # else DASK_SCHEDULER_ADDRESS, else this machine
    workers: int = 1  # 1: this process; more: a LocalCluster of that many processes
    threads: int = 1  # torch threads in each process that computes a chunk, this one too
    deterministic: bool = True  # torch.use_deterministic_algorithms in each of them

    def __post_init__(self) -> None:
        if self.workers < 1 or self.threads < 1:
            raise ValueError(f"workers and threads must be >= 1, not {self}")


@dataclass(frozen=True)
class _Pins:
    threads: int
    deterministic: bool
    build: str  # what else decides the bits: see _build()


@cache
def _capability() -> str:
    return numerics.capability(machine.cpu_flags(machine.cpuinfo()), platform.machine())


@cache
def _build() -> str:
    """What else decides the bits this process computes: torch's release and kernel set."""
    return f"torch {importlib.metadata.version('torch')}, kernels {_capability()}"


def _prepare(pins: _Pins) -> None:
    """Pin this process as the caller's, or raise if it cannot compute the same bits."""
    here = f"{socket.gethostname()} (pid {os.getpid()})"
    if _build() != pins.build:
        raise RuntimeError(f"{here} has {_build()}; the study needs {pins.build}")
    if "torch" not in sys.modules:
        numerics.pin_kernels()
    import torch

    used = torch.backends.cpu.get_cpu_capability().lower()
    if used != _capability() or os.environ.get("MKL_CBWR") != numerics.MKL_CBWR:
        raise RuntimeError(
            f"{here} imported torch before numerics.pin_kernels() (ATen uses {used!r}, "
            f"MKL_CBWR={os.environ.get('MKL_CBWR')}): run stages with `python -m pipeline`, "
            "workers as pipeline.run.cluster says"
        )
    numerics.pin(pins.threads, pins.deterministic)


def _pinned(pins: _Pins, work: bytes, chunk: bytes) -> object:
    """What a Dask worker runs for one chunk."""
    _prepare(pins)
    return pickle.loads(work)(pickle.loads(chunk))


def _failed(index: int, total: int, error: BaseException) -> str:
    return f"chunks[{index}] (of {total}) failed on every try: {type(error).__name__}: {error}"


def map_chunks(
    work: Callable[[C], R],
    chunks: Sequence[C],
    where: Where,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[R]:
    """work(chunk) for every chunk, yielded in chunk order; progress(done, total) after each.
    Nothing starts before the first result is asked for; closing the iterator, or any
    exception (Ctrl-C included), cancels what is left. `work` must pickle by reference:
    a module-level function (or a partial of one), no lambda or local function. A single
    chunk on this machine runs in this process (a cluster would only add its start-up)."""
    if not chunks:
        return
    pickle.dumps(work)  # fails here, before any cluster starts, if it cannot travel
    if _target(where) is None and len(chunks) == 1:
        where = Where(None, 1, where.threads, where.deterministic)
    with session(where) as here:
        yield from here.map(work, chunks, progress)


class Session:
    """Where one stage's chunks run: this process (no client) or a Dask cluster."""

    def __init__(self, client: "Client | None", pins: _Pins) -> None:
        self.client, self.pins = client, pins

    def map(
        self,
        work: Callable[[C], R],
        chunks: Sequence[C],
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[R]:
        """As map_chunks, on this session's cluster (or process)."""
        if not chunks:
            return
        results: Iterator[object]
        if self.client is None:
            results = _here(work, chunks, self.pins)
        else:
            results = _in_order(self.client, pickle.dumps(work), chunks, self.pins)
        with closing(results):  # type: ignore[type-var]  # generators close
            for done, result in enumerate(results, 1):
                # a signal that came while a finalizer ran (a Dask future releases itself in
                # __del__) was swallowed by Python; pipeline.run.interrupt kept it: raise it now
                interrupt.check()
                if progress is not None:
                    progress(done, len(chunks))
                yield cast(R, result)


@contextmanager
def session(where: Where) -> Iterator[Session]:
    """One cluster (ours, started here and closed on leaving, or the scheduler's) or this
    process, for every map of a stage: a LocalCluster's workers start once."""
    pins = _Pins(where.threads, where.deterministic, _build())
    target = _target(where)
    if target is None and where.workers == 1:
        yield Session(None, pins)
        return
    from distributed import Client, LocalCluster  # here: the in-process path never pays for it

    with ExitStack() as stack:
        if target is None:
            cluster = LocalCluster(
                n_workers=where.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,  # no dashboard (bokeh is not installed anyway)
                # the scheduler serves HTTP (health, metrics) even so, on 8787 if it is free:
                # any free loopback port instead, so that two studies never compete for it
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
            stack.callback(_close, cluster)
            client = Client(cluster, set_as_default=False)
            stack.callback(client.close)
        else:
            client = _connect(*target)
            stack.callback(client.close)
            _wait_for_workers(client, target[0])
        yield Session(client, pins)


def _target(where: Where) -> tuple[str, str] | None:
    """The scheduler address and where it came from, or None for this machine."""
    if where.scheduler:
        return where.scheduler, "the study's scheduler param"
    if address := os.environ.get(ADDRESS_ENV):
        return address, ADDRESS_ENV
    return None


def _here(work: Callable[[C], R], chunks: Sequence[C], pins: _Pins) -> Generator[R, None, None]:
    _prepare(pins)
    for index, chunk in enumerate(chunks):
        try:
            result = work(chunk)
        except Exception as error:  # the same error as on a cluster, wherever it ran
            raise ClusterError(_failed(index, len(chunks), error)) from error
        yield result


def _connect(address: str, source: str) -> "Client":
    from distributed import Client

    try:
        return Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except Exception as error:  # whatever answers, if not a scheduler (seen: MemoryError)
        reason = f"{type(error).__name__}: {error}"
    # A half-made Client, if left to be collected at exit, holds the process up for 10 s
    # in __del__ (its event loop is gone by then): free it now, while its loop runs, and
    # raise unchained, so that no traceback keeps it alive.
    gc.collect()
    raise ClusterError(
        f"no Dask scheduler at {address} (from {source}): {reason}; start one there "
        f"(`dask scheduler`, then `dask worker {address}`), or unset {source} to run here"
    )


def _wait_for_workers(client: "Client", address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
    except TimeoutError:
        raise ClusterError(
            f"the Dask scheduler at {address} has no workers after {WORKERS_TIMEOUT_S} s: "
            f"start some (`dask worker {address} --nthreads 1`, see pipeline.run.cluster)"
        ) from None


def _in_order(
    client: "Client", work: bytes, chunks: Sequence[object], pins: _Pins
) -> Iterator[object]:
    """Results in chunk order, with up to WINDOW chunks per worker thread submitted ahead."""
    run = uuid.uuid4().hex[:8]  # unique task keys, readable in Dask's logs
    pending: deque[Future] = deque()
    try:
        for index in range(len(chunks)):
            window = WINDOW * max(1, sum(client.nthreads().values()))  # workers may come and go
            while (ahead := index + len(pending)) < len(chunks) and len(pending) < window:
                pending.append(
                    client.submit(
                        _pinned,
                        pins,
                        work,
                        pickle.dumps(chunks[ahead]),
                        key=f"chunk-{ahead}-{run}",
                        retries=RETRIES,
                    )
                )
            future = pending.popleft()
            try:
                result = future.result()
            except Exception as error:
                raise ClusterError(_failed(index, len(chunks), error)) from error
            del future  # releases the result on its worker
            yield result
    finally:
        if pending:
            client.cancel(list(pending))


def _close(cluster: "LocalCluster") -> None:
    """Close `cluster` at once: LocalCluster.close() lets a worker finish its running chunk
    for up to 4 s (a thread cannot be interrupted); by then no one wants its result."""
    log = logging.getLogger("distributed.nanny")
    level = log.level
    # "still alive after 0.4 seconds, killing" is what we ask for: a worker with torch
    # loaded takes longer than that to exit even when idle
    log.setLevel(logging.ERROR)
    try:
        cluster.sync(_close_nannies, list(cluster.workers.values()))
    finally:
        log.setLevel(level)
        cluster.close()


async def _close_nannies(nannies: "list[Nanny]") -> None:
    await asyncio.gather(*(nanny.close(timeout=CLOSE_TIMEOUT_S) for nanny in nannies))
