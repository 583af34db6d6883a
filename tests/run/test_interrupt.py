"""interrupt: SIGINT/SIGTERM become a clean exit 130/143, even when first swallowed."""

import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.run import interrupt
from tests.conftest import ROOT
from tests.helpers.signals import IGNORED, needs_sigint


@pytest.fixture(autouse=True)
def _unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()  # exit_on_signal freezes the heap to exit fast


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_exits_with_the_shell_code_after_cleanup(
    sig: int, code: int, request: pytest.FixtureRequest
) -> None:
    """A signal inside the block runs `finally` blocks, then exits 130 (INT) or 143 (TERM)."""
    needs_sigint(request, sig)
    cleaned = []
    with pytest.raises(SystemExit) as exit_, interrupt.exit_on_signal():
        try:
            os.kill(os.getpid(), sig)  # handled before the next bytecode
            pytest.fail("the signal did not interrupt the block")
        finally:
            cleaned.append(True)
    assert exit_.value.code == code and cleaned == [True]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point
def test_signal_swallowed_by_a_finalizer_is_raised_at_the_next_check() -> None:
    """Python only prints an exception raised in __del__; check() raises it again."""

    class SignalledWhileFinalizing:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            sum(range(1000))  # the handler runs here, inside the finalizer

    with pytest.raises(SystemExit) as exit_, interrupt.exit_on_signal():
        SignalledWhileFinalizing()  # collected at once; its Terminated is swallowed
        interrupt.check()
        pytest.fail("check() did not raise the swallowed signal")
    assert exit_.value.code == 143


def test_handlers_are_restored_and_nothing_is_pending_afterwards() -> None:
    """Outside the block the previous handlers are back and check() is quiet."""
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with interrupt.exit_on_signal():
        pass
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    interrupt.check()


ARMED = (  # a child armed with end_with_parent: prints its pid, then sleeps
    "import os, signal, sys, time; from pipeline.run import interrupt; "
    "interrupt.end_with_parent(os.getppid()); print(os.getpid(), flush=True); time.sleep(60)"
)


def gone_after_killing(parent: str, *args: str) -> bool:
    """Run `parent` (Python code; argv: args, then ARMED), which starts ARMED somehow; kill
    it (-9) once ARMED runs: whether ARMED is gone within 5 s."""
    with subprocess.Popen(
        [sys.executable, "-c", parent, *args, ARMED], cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        proc.kill()
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _alive(pid)


def test_a_process_ends_when_its_parent_dies() -> None:
    """A child armed with end_with_parent gets SIGTERM when its parent is killed (-9): it
    is gone within a second instead of running on with another parent."""
    parent = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', sys.argv[1]]).wait()"

    assert gone_after_killing(parent)


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_a_process_a_shell_runs_ends_when_the_shells_parent_dies(shell: str) -> None:
    """DVC runs a stage as `$SHELL -c CMD`; dash (/bin/sh on Debian, SHELL unset as in CI)
    waits as the stage's parent instead of exec'ing it. DVC killed: the stage is gone
    within seconds, though its shell still lives (found in CI: a stopped `dvc exp run`
    left `sh -c python -m pipeline train` training on)."""
    parent = (
        "import subprocess, sys; "
        "cmd = f'{sys.executable} -c \"$0\"; echo'; "  # a shell waits on it, even bash
        "subprocess.Popen([sys.argv[1], '-c', cmd, sys.argv[2]]).wait()"
    )

    assert gone_after_killing(parent, shell)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for init to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("true", "1 passed")])
def test_an_ignored_sigint_skips_the_signal_tests_naming_why_but_not_in_ci(
    ci: str, outcome: str
) -> None:
    """Under `nohup ... &` (SIGINT ignored) a SIGINT test skips saying so; CI=true runs it."""
    test = f"{Path(__file__)}::test_signal_exits_with_the_shell_code_after_cleanup[2-130]"
    env = {**os.environ, "CI": ci}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as nohup's `&` does
    )
    assert outcome in run.stdout, run.stdout + run.stderr
    assert (IGNORED in " ".join(run.stdout.split())) == (ci == "")
