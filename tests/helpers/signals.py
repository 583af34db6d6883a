"""SIGINT as a terminal delivers it: the `sigint` fixture (pytest plugin, see conftest).

A suite started with `nohup ... &` (or any background job of a non-interactive shell)
inherits an ignored SIGINT, and so do the stages it starts; they rightly keep it ignored
(pipeline.run.interrupt), so a Ctrl-C test would fail for a reason that is not a bug.
There the fixture skips, naming the reason. With CI=true a skip would hide the test, so
the fixture restores Python's default handler for the test instead: an ignored signal
stays ignored across exec, a handled one does not, so the stages started by the test get
SIGINT back too.
"""

import os
import signal
from collections.abc import Iterator

import pytest

IGNORED = (
    "SIGINT is ignored in this process (started with nohup or in the background), and so in "
    "every stage it starts: run the suite in a foreground shell, or with CI=true"
)


@pytest.fixture
def sigint() -> Iterator[None]:
    """Nothing to do where SIGINT is delivered; else skip, or with CI=true restore it."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    if os.environ.get("CI") != "true":
        pytest.skip(IGNORED)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def needs_sigint(request: pytest.FixtureRequest, sig: int) -> None:
    """For a test parametrized over signals: the `sigint` fixture when `sig` is SIGINT."""
    if sig == signal.SIGINT:
        request.getfixturevalue("sigint")
