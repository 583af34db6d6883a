"""Where work runs, for every stage that spreads it (train's grid cells, the study's
chunks): one mechanism, `session(where)`, and one knob, params.yaml's `env.workers` and
`env.scheduler`. Results come back in order, and are the same bits wherever they ran.

- `Where()` (workers 1, no scheduler): every item runs in this process, one after the
  other; Dask is not even imported.
- `Where(workers=n)`: this process and n - 1 spawned ones share the items
  (pipeline.run.local): no core idles while the others start; a process that dies has
  its items run again here.
- `Where(scheduler="tcp://host:8786")`, or DASK_SCHEDULER_ADDRESS in the environment: a
  running Dask cluster, beyond this machine; a chunk whose worker dies runs again on
  another (`distributed.scheduler.allowed-failures`), one that raises is retried RETRIES
  times.

The same bits wherever an item runs: each process is pinned by `_prepare` (the ATen and
MKL kernels before torch is imported, then the thread count and deterministic kernels:
pipeline.run.numerics), which refuses a process whose torch release or kernel set differs
from the caller's. On Dask the work and the chunk travel as pickled bytes, unpickled only
after the pins. An external worker needs only the caller's checkout (the same commit:
nothing checks it) and venv. A cluster on 127.0.0.1 (use a LAN address to share it):

    dask scheduler --host 127.0.0.1 --port 8786 --dashboard-address 127.0.0.1:8787
    cd /path/to/gradlab && source .venv/bin/activate
    PYTHONPATH=$PWD dask worker tcp://127.0.0.1:8786 --host 127.0.0.1 --nthreads 1 --nworkers 2

`--dashboard-address`: without it the scheduler serves HTTP on 0.0.0.0:8787, even with
`--no-dashboard`. `--nthreads 1`: torch's settings are per process. No `--preload` that
imports torch. An item that fails everywhere is a `ClusterError` naming it. On
KeyboardInterrupt or Terminated (pipeline.run.interrupt) what is not done is cancelled and
local workers are terminated at once; chunks already running on an external cluster finish
there unseen.
"""

import gc
import importlib.metadata
import os
import pickle
import platform
import socket
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, TypeVar, cast

from pipeline import lazy
from pipeline.run import interrupt, local, machine, numerics

if TYPE_CHECKING:
    from distributed import Client, Future

    from pipeline import params

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
    """Where work runs. `workers` is ignored when a scheduler is used."""

    scheduler: str | None = None  # else DASK_SCHEDULER_ADDRESS, else this machine
    workers: int = 1  # processes on this machine, this one included
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
    if not lazy.loaded("torch"):
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
    """Where one stage's chunks run: this machine's processes (no client) or a Dask cluster."""

    def __init__(self, client: "Client | None", pins: _Pins, workers: int = 1) -> None:
        self.client, self.pins, self.workers = client, pins, workers

    def map(
        self,
        work: Callable[[C], R],
        chunks: Sequence[C],
        progress: Callable[[int, int], None] | None = None,
    ) -> Generator[R, None, None]:
        """As map_chunks, on this session's cluster (or process)."""
        if not chunks:
            return
        results: Iterator[object]
        if self.client is None:
            results = _here(work, chunks, self.pins, self.workers)
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
    """This machine's processes, or the Dask cluster of a scheduler (connected once for
    every map of a stage, closed on leaving)."""
    pins = _Pins(where.threads, where.deterministic, _build())
    target = _target(where)
    if target is None:
        yield Session(None, pins, where.workers)
        return
    client = _connect(*target)
    try:
        _wait_for_workers(client, target[0])
        yield Session(client, pins)
    finally:
        client.close()


def _target(where: Where) -> tuple[str, str] | None:
    """The scheduler address and where it came from, or None for this machine."""
    if where.scheduler:
        return where.scheduler, "the study's scheduler param"
    if address := os.environ.get(ADDRESS_ENV):
        return address, ADDRESS_ENV
    return None


def _here(
    work: Callable[[C], R], chunks: Sequence[C], pins: _Pins, workers: int
) -> Generator[R, None, None]:
    """This process and workers - 1 spawned ones (pipeline.run.local), each pinned."""
    _prepare(pins)
    try:
        yield from local.ordered(work, chunks, workers, partial(_prepare, pins))
    except local.ItemError as error:  # the same error as on a cluster, wherever it ran
        raise ClusterError(
            f"chunks[{error.index}] (of {len(chunks)}) failed on every try: {error}"
        ) from error


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


def where(env: "params.EnvParams") -> Where:
    """Where params.yaml's `env` section says work runs."""
    return Where(env.scheduler, env.workers, env.threads, env.deterministic)
