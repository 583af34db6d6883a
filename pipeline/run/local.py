"""A function mapped over items by this process and `workers - 1` spawned ones, results in
item order.

All processes take items from one shared counter, so no core idles while the workers
start (importing torch takes seconds). A worker whose process dies (SIGKILL, the OOM
killer) has the items it took run again here; an item that raises is reported as
ClusterError naming it. On an error or a signal the workers are terminated at once; a
worker whose parent died exits by itself.
"""

import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
HERE = -1  # the owner of the items this process takes


class ItemError(Exception):
    """An item raised in a worker process; the message names the error."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def _here(work: Callable[[T], R], item: T, index: int) -> R:
    """work(item) in this process; an error as ItemError naming the item."""
    try:
        return work(item)
    except Exception as error:
        raise ItemError(index, f"{type(error).__name__}: {error}") from error


def _claim(counter: "Synchronized[int]", owner: "SynchronizedArray[int]", me: int) -> int:
    """The next unclaimed item's index, shared by every process, noted as `me`'s."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    if index < len(owner):
        owner[index] = me
    return index


def _exit_when_orphaned() -> None:
    """Exit this worker at once when its parent is gone without stopping it: no one reads
    its results any more, and the queue's flush at exit would block once the pipe is full."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()  # returns when the parent's end of the spawn pipe closes
        os._exit(1)


def _worker(
    work: Callable[[T], R],
    items: Sequence[T],
    setup: Callable[[], None],
    counter: "Synchronized[int]",
    owner: "SynchronizedArray[int]",
    me: int,
    results: "Queue[tuple[int, R | None, str | None]]",
) -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it and stops us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    setup()
    while (index := _claim(counter, owner, me)) < len(items):
        try:
            results.put((index, work(items[index]), None))
        except Exception as error:  # reported, with its item, by the parent
            results.put((index, None, f"{type(error).__name__}: {error}"))


def ordered(
    work: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    setup: Callable[[], None],
) -> Iterator[R]:
    """work(item) for every item, in item order. `work` and `setup` (run first in each
    spawned worker, e.g. to pin threads) must be picklable; ItemError when an item raises."""
    if workers == 1 or len(items) <= 1:
        for index, item in enumerate(items):
            yield _here(work, item, index)
        return
    # spawn, not fork: forking a process that has started torch's thread pools can hang
    ctx = multiprocessing.get_context("spawn")
    counter, owner = ctx.Value("i", 0), ctx.Array("i", [HERE - 1] * len(items))
    results: Queue[tuple[int, R | None, str | None]] = ctx.Queue()
    processes = [
        ctx.Process(
            target=_worker, args=(work, items, setup, counter, owner, k, results), daemon=True
        )
        for k in range(workers - 1)
    ]
    for process in processes:
        process.start()
    done: dict[int, R] = {}
    try:
        for next_ in range(len(items)):
            while next_ not in done:
                if (index := _claim(counter, owner, HERE)) < len(items):
                    done[index] = _here(work, items[index], index)  # this process works too
                    continue
                try:
                    index, value, error = results.get(timeout=0.2)
                except queue.Empty:
                    _rerun_lost(work, items, owner, processes, done, next_)
                    continue
                if error is not None:
                    raise ItemError(index, error)
                if index >= next_:  # else a late duplicate of an item run here again
                    done.setdefault(index, value)  # type: ignore[arg-type]
            yield done.pop(next_)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


def _rerun_lost(
    work: Callable[[T], R],
    items: Sequence[T],
    owner: "SynchronizedArray[int]",
    processes: Sequence[multiprocessing.process.BaseProcess],
    done: dict[int, R],
    first: int,
) -> None:
    """Run here the items from `first` on that workers which died (a signal, not an exit)
    had taken and not returned."""
    dead = {k for k, p in enumerate(processes) if p.exitcode is not None and p.exitcode != 0}
    for index in range(first, len(items)):
        if owner[index] in dead and index not in done:
            owner[index] = HERE
            done[index] = _here(work, items[index], index)
