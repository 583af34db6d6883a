"""SIGINT and SIGTERM as exceptions, so every stage cleans up the same way on either.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM kill the process outright,
skipping `finally` blocks; raising `Terminated` instead lets temp files be removed and
MLflow runs be closed as KILLED before exiting 130 or 143 like a shell would.

An exception raised while a finalizer (`__del__`, a weakref callback) runs is printed and
swallowed by Python, so the signal is also remembered: long loops call `check()` between
items and the interrupt is raised again there.

A stage also ends when the process that started it dies (`end_with_parent`): DVC stopped
by SIGTERM (`kill`, a container stop) exits at once and does not stop the stage, which
would train on with no one waiting for it, holding a core and DVC's workspace. DVC runs a
stage through `$SHELL -c` (`/bin/sh -c` when SHELL is unset, as in CI and containers); bash
execs a lone command, dash does not and waits on as the stage's parent, so then the stage
also watches its shell's parent.
"""

import ctypes
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM."""


_pending: list[int] = []  # signals received inside exit_on_signal()


def _raise(signum: int, frame: FrameType | None) -> None:
    _pending.append(signum)
    check()


def check() -> None:
    """Raise KeyboardInterrupt or Terminated if a signal arrived (and was swallowed)."""
    if signal.SIGINT in _pending:
        raise KeyboardInterrupt
    if signal.SIGTERM in _pending:
        raise Terminated


def _exit_fast(code: int) -> NoReturn:
    # With torch and pandas loaded, the interpreter's final garbage collections take
    # 0.5-1.2 s; frozen objects are skipped by them (atexit handlers still run), so a
    # signalled stage is gone in ~0.2 s. Cleanup has already happened by now.
    gc.freeze()
    raise SystemExit(code) from None


@contextmanager
def exit_on_signal() -> Iterator[None]:
    """Run the block; on SIGINT/SIGTERM let cleanup run, then exit 130/143."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig, handler in previous.items():
        if handler is not signal.SIG_IGN:  # an ignored SIGINT (a background job) stays ignored
            signal.signal(sig, _raise)
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted (SIGINT): nothing partial was kept", file=sys.stderr)
        _exit_fast(EXIT_SIGINT)
    except Terminated:
        print("terminated (SIGTERM): nothing partial was kept", file=sys.stderr)
        _exit_fast(EXIT_SIGTERM)
    finally:
        _pending.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies (Linux)
WATCH_S = 0.5  # elsewhere: how often a thread looks for a new parent


def end_with_parent(parent: int) -> None:
    """SIGTERM this process when its parent, `parent` (os.getppid() at start), dies: the
    kernel's parent-death signal on Linux, a watching thread elsewhere; and, when that
    parent is a shell running it (`sh -c`), when the shell's own parent dies. SIGTERM at
    once if the parent is already gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if "-c" in _arguments(parent)[1:] and (runner := _parent_of(parent)) is not None:
            threading.Thread(target=_watch, args=(parent, runner), daemon=True).start()
    else:
        threading.Thread(target=_watch, args=(os.getpid(), parent), daemon=True).start()
    if os.getppid() != parent:  # it died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def _watch(child: int, parent: int) -> None:
    """SIGTERM this process once `child`'s parent is no longer `parent`."""
    while _parent_of(child) == parent:
        time.sleep(WATCH_S)
    os.kill(os.getpid(), signal.SIGTERM)


def _parent_of(pid: int) -> int | None:
    """pid's parent; None when pid is gone (or, but for this process, without /proc)."""
    if pid == os.getpid():
        return os.getppid()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # "pid (comm) state ppid ..."


def _arguments(pid: int) -> list[str]:
    """pid's command line ([] when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []
