"""Real servers for the stage tests, each on a free 127.0.0.1 port inside a temporary folder.

`mlflow_server` and `auth_server` are `mlflow server` with a SQLite store, the second behind
basic auth; `postgres` is a throwaway PostgreSQL cluster and `pg_server` an `mlflow server`
on it (team mode). All are module-scoped (an `mlflow server` takes ~20 s to come up on a
busy 2-core machine) and stopped at teardown. A missing system tool skips, or fails in CI.
"""

import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.conftest import BIN, missing, sandbox_env

HOST = "127.0.0.1"  # loopback only, for every server here
STARTUP_S = 120  # `mlflow server` needs ~20 s on a loaded 2-core machine; bounded, not forever
PG_BINS = "/usr/lib/postgresql/*/bin"  # Debian/Ubuntu layout; CI installs postgresql (15)


def free_port() -> int:
    """A loopback TCP port nobody listens on (closed again before returning)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def listening(port: int) -> set[str]:
    """Local addresses with a TCP socket in LISTEN state on `port` (Linux /proc/net/tcp*)."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: TCP_LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started (mlflow spawns uvicorn), SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
            return


@contextmanager
def running_mlflow(
    tmp: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 (one worker, job runner off), until the block ends;
    yields its URI once GET /health answers. The log is `tmp`/server.log."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    uri = f"http://{HOST}:{port}"
    cmd = [str(BIN / "mlflow"), "server", "--host", HOST, "--port", str(port), "--workers", "1"]
    environ = {
        **sandbox_env(tmp),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # else 8 huey workers, stores in /tmp
        **(env or {}),
    }
    log = tmp / "server.log"
    with open(log, "wb") as out:
        # a session of its own: teardown signals mlflow and its uvicorn child as one group
        proc = subprocess.Popen(
            [*cmd, *args],
            cwd=tmp,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(uri, proc, log)
        yield uri
    finally:
        stop_group(proc)


def wait_healthy(uri: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with suppress(OSError), urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.25)
    pytest.fail(f"mlflow server not healthy within {STARTUP_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of an `mlflow server` with a SQLite store; artifacts proxied into its folder."""
    tmp = tmp_path_factory.mktemp("mlflow-server")
    with running_mlflow(tmp, *_stores(tmp, f"sqlite:///{tmp}/server.db")) as uri:
        yield uri


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(URI, username, password) of an `mlflow server --app-name basic-auth`, whose admin
    user is created at first start from MLFLOW_AUTH_ADMIN_PASSWORD."""
    tmp = tmp_path_factory.mktemp("auth-server")
    username, password = "admin", secrets.token_urlsafe(18)  # >= 12 chars, MLflow's minimum
    config = tmp / "basic_auth.ini"  # mlflow/server/auth/basic_auth.ini, with our paths
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{tmp}/basic_auth.db\n"
        f"admin_username = {username}\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),  # CSRF; the server refuses without
    }
    stores = _stores(tmp, f"sqlite:///{tmp}/server.db")
    with running_mlflow(tmp, "--app-name=basic-auth", *stores, env=env) as uri:
        yield uri, username, password


def _stores(tmp: Path, backend: str) -> list[str]:
    """Run data in `backend`; artifacts proxied by the server into `tmp`/artifacts."""
    return [f"--backend-store-uri={backend}", f"--artifacts-destination={tmp / 'artifacts'}"]


def _pg_bin() -> Path:
    """The bin folder of the newest installed PostgreSQL (initdb, pg_ctl, createdb)."""
    found = [p for p in Path("/").glob(PG_BINS.lstrip("/")) if (p / "initdb").is_file()]
    if found:
        return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    initdb = shutil.which("initdb")
    if initdb is None:
        missing("PostgreSQL is not installed (no initdb): apt-get install postgresql")
    return Path(initdb).parent


def _as_postgres() -> list[str]:
    """Command prefix that drops root: initdb and postgres refuse to run as root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        missing("running as root and there is no `postgres` OS user to run PostgreSQL as")
    if shutil.which("runuser") is None:
        missing("running as root and `runuser` (util-linux) is missing")
    return ["runuser", "-u", "postgres", "--"]


@contextmanager
def _traversable(path: Path) -> Iterator[None]:
    """Let the `postgres` user reach `path`: pytest makes its temp root 0700 (root-only), so
    add search (x, not read) permission for others on the ancestors for the block only."""
    changed = []
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if os.geteuid() == 0 and not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            changed.append((parent, stat.S_IMODE(mode)))
    try:
        yield
    finally:
        for parent, mode in reversed(changed):
            parent.chmod(mode)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """postgresql://user:password@127.0.0.1:port/gradlab of a throwaway cluster in tmp."""
    bin_dir, prefix = _pg_bin(), _as_postgres()
    tmp = tmp_path_factory.mktemp("pg")
    user, password, port = "gradlab", secrets.token_urlsafe(18), free_port()
    data, sock, pwfile = tmp / "data", tmp / "sock", tmp / "pwfile"
    sock.mkdir()
    pwfile.write_text(password + "\n")
    if prefix:
        for path in (tmp, sock, pwfile):
            shutil.chown(path, "postgres", "postgres")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}

    def pg(tool: str, *args: str) -> None:
        cmd = [*prefix, str(bin_dir / tool), *args]
        run = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"{tool} failed:\n{run.stdout}{run.stderr}"

    options = f"-c listen_addresses={HOST} -p {port} -k {sock} -c fsync=off"
    with _traversable(tmp):
        pg(
            "initdb",
            f"--pgdata={data}",
            f"--username={user}",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--locale=C",
            "--encoding=UTF8",
            "--no-sync",
        )
        pg(
            "pg_ctl",
            f"--pgdata={data}",
            f"--log={tmp / 'server.log'}",
            f"--options={options}",
            "--wait",
            "--timeout=60",
            "start",
        )
    try:
        createdb = [
            str(bin_dir / "createdb"),
            f"--host={HOST}",
            f"--port={port}",
            f"--username={user}",
        ]
        pg_env = {**env, "PGPASSWORD": password}  # over TCP with the password: as the URI will
        subprocess.run(
            [*createdb, "gradlab"], env=pg_env, check=True, capture_output=True, timeout=60
        )
        yield f"postgresql://{user}:{password}@{HOST}:{port}/gradlab"
    finally:
        with _traversable(tmp):
            pg("pg_ctl", f"--pgdata={data}", "--mode=fast", "--wait", "stop")


@pytest.fixture(scope="module")
def pg_server(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of an `mlflow server` whose backend store is the `postgres` database."""
    tmp = tmp_path_factory.mktemp("pg-server")
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; we ship psycopg2-binary
    backend = postgres.replace("postgresql://", "postgresql+psycopg2://", 1)
    with running_mlflow(tmp, *_stores(tmp, backend)) as uri:
        yield uri
