"""A function mapped over items by this process and `workers - 1` spawned ones.

All processes take items from one shared counter, so no core idles while the workers
start (importing torch takes seconds). Results arrive in the order they finish. On an
error or a signal the workers are terminated at once; a worker whose parent died
(SIGKILL, the OOM killer) exits by itself.
"""

import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable, Generator, Sequence
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _claim(counter: "Synchronized[int]") -> int:
    """The next unclaimed item's index, shared by every process."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    return index


def _exit_when_orphaned() -> None:
    """Exit this worker at once when its parent is gone without stopping it: no one reads
    its results any more, and the queue's flush at exit would block once the pipe is full."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()  # returns when the parent's end of the spawn pipe closes
        os._exit(1)


def _worker(
    function: Callable[[T], R],
    items: Sequence[T],
    setup: Callable[[], None],
    counter: "Synchronized[int]",
    results: "Queue[R]",
) -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it and stops us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    setup()
    while (index := _claim(counter)) < len(items):
        results.put(function(items[index]))


def unordered(
    function: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    setup: Callable[[], None],
) -> Generator[R, None, None]:
    """function(item) for every item, in the order they finish. `function` and `setup`
    (run first in each spawned worker, e.g. to pin threads) must be picklable."""
    if workers == 1 or len(items) <= 1:
        yield from map(function, items)
        return
    # spawn, not fork: forking a process that has started torch's thread pools can hang
    ctx = multiprocessing.get_context("spawn")
    counter, results = ctx.Value("i", 0), ctx.Queue()
    processes = [
        ctx.Process(target=_worker, args=(function, items, setup, counter, results), daemon=True)
        for _ in range(workers - 1)
    ]
    for process in processes:
        process.start()
    received = 0
    try:
        while (index := _claim(counter)) < len(items):
            yield function(items[index])
            received += 1
        while received < len(items):
            try:
                yield results.get(timeout=1.0)
                received += 1
            except queue.Empty:
                if not any(p.is_alive() for p in processes) and results.empty():
                    codes = [p.exitcode for p in processes]
                    raise RuntimeError(f"a worker process died (exit codes {codes})") from None
    finally:
        for process in processes:
            if received < len(items):
                process.terminate()
            process.join()
