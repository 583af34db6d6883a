"""A real Dask cluster on 127.0.0.1 for the tests that run chunks through one."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress

import psutil
import pytest

from tests.conftest import BIN, ROOT, sandbox_env
from tests.helpers.servers import HOST

STARTUP_S = 60  # a `dask worker` takes ~2 s to join on an idle 2-core machine


def survivors(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes of `procs` still alive after `timeout` seconds."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `dask scheduler` and two `dask worker`s on 127.0.0.1, started as the
    docstring of pipeline.run.cluster says: no kernel pins in their environment. Yields the
    address; at teardown every process they started is gone."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("dask")
    env = sandbox_env(tmp, PYTHONPATH=str(ROOT))
    file = tmp / "scheduler.json"
    http = ["--dashboard-address", f"{HOST}:0"]  # else HTTP on 0.0.0.0:8787, dashboard or not
    commands = [
        ["scheduler", "--host", HOST, "--port", "0", *http, "--scheduler-file"],
        *[["worker", "--host", HOST, "--nthreads", "1", *http, "--scheduler-file"]] * 2,
    ]
    procs: list[subprocess.Popen[bytes]] = []
    started: list[psutil.Process] = []  # every process of the cluster, for the final check
    try:
        for n, args in enumerate(commands):
            with open(tmp / f"{n}.log", "wb") as log:  # a session each: killed as a group
                procs.append(
                    subprocess.Popen(
                        [str(BIN / "dask"), *args, str(file)],
                        cwd=tmp,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        started = [psutil.Process(p.pid) for p in procs]
        deadline = time.monotonic() + STARTUP_S
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not file.exists():
            pytest.fail(f"no scheduler within {STARTUP_S} s:\n{(tmp / '0.log').read_text()}")
        address = json.loads(file.read_text())["address"]
        with Client(address, timeout="10s", set_as_default=False) as client:
            client.wait_for_workers(2, timeout=STARTUP_S)
        started += [c for p in started for c in p.children(recursive=True)]
        bound = {c.laddr.ip for p in started for c in p.net_connections() if c.status == "LISTEN"}
        assert bound == {HOST}
        yield address
    finally:
        for proc in procs:
            with suppress(psutil.NoSuchProcess):  # a worker restarted since is a new process
                started += psutil.Process(proc.pid).children(recursive=True)
            for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=wait_s)
                    break
    assert not survivors(started, timeout=5)
