"""SIGINT and SIGTERM as exceptions, so every stage cleans up the same way on either.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM kill the process outright,
skipping `finally` blocks; raising `Terminated` instead lets temp files be removed and
MLflow runs be closed as KILLED before exiting 130 or 143 like a shell would.
"""

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def exit_on_signal() -> Iterator[None]:
    """Run the block; on SIGINT/SIGTERM let cleanup run, then exit 130/143."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted (SIGINT): nothing partial was kept", file=sys.stderr)
        raise SystemExit(EXIT_SIGINT) from None
    except Terminated:
        print("terminated (SIGTERM): nothing partial was kept", file=sys.stderr)
        raise SystemExit(EXIT_SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
