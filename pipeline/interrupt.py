"""SIGINT and SIGTERM as exceptions, so every stage cleans up the same way on either.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM kill the process outright,
skipping `finally` blocks; raising `Terminated` instead lets temp files be removed and
MLflow runs be closed as KILLED before exiting 130 or 143 like a shell would.
"""

import gc
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
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
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted (SIGINT): nothing partial was kept", file=sys.stderr)
        _exit_fast(EXIT_SIGINT)
    except Terminated:
        print("terminated (SIGTERM): nothing partial was kept", file=sys.stderr)
        _exit_fast(EXIT_SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
