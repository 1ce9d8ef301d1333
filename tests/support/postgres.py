"""A real PostgreSQL server for the test session (pytest plugin: ``support.postgres``).

``postgres_server`` (session): ``initdb`` into a temporary folder, start ``postgres`` on
127.0.0.1 at a free port (as the ``postgres`` user when the tests run as root: initdb refuses
root), wait until it accepts connections; stop it (fast shutdown, then SIGKILL) at the end.
``postgres_url`` (session): a database ``handoff_test`` on it. ``postgres_database``
(function): a fresh, empty database per test, dropped afterwards.

Binaries: $HANDOFF_PG_BIN, else ``pg_config --bindir``, else the newest /usr/lib/postgresql/*/bin.
Missing binaries or a server that does not start FAIL the test with the reason; never skip
(on a fresh machine `.ci/run` installs the Debian postgresql package).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 30


def find_bindir() -> Path:
    """The folder holding initdb and postgres; raises RuntimeError saying where it looked."""
    looked = []
    env = os.environ.get("HANDOFF_PG_BIN")
    candidates = [Path(env)] if env else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            candidates.append(Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                                  check=True).stdout.strip()))
        except (OSError, subprocess.CalledProcessError):
            pass
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                         key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for folder in candidates:
        looked.append(str(folder))
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise RuntimeError("PostgreSQL server binaries (initdb, postgres) not found in "
                       f"{', '.join(looked) or '$HANDOFF_PG_BIN, pg_config --bindir, /usr/lib/postgresql/*/bin'}; "
                       "install them (Debian: apt-get install -y postgresql) or set HANDOFF_PG_BIN")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    superuser: str = "postgres"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str) -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.superuser, dbname="postgres",
                                connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def _as_postgres_user() -> dict[str, object]:
    """Popen arguments that run a command as the postgres user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root, and there is no 'postgres' user to run the server as "
                           "(initdb refuses root); create one or run the tests as another user") from None
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def start_postgres() -> PostgresServer:
    """initdb + start; raises RuntimeError with the reason (and the log's tail) on failure."""
    bindir = find_bindir()
    as_user = _as_postgres_user()
    root = Path(tempfile.mkdtemp(prefix="handoff-pg-"))
    if as_user:
        os.chown(root, int(as_user["user"]), int(as_user["group"]))  # type: ignore[call-overload]
    data = root / "data"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C", "HOME": str(root)}
    done = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                           "--locale=C", "--no-sync"], check=False, capture_output=True, text=True, env=env, cwd=root,
                          **as_user)  # type: ignore[call-overload]
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between probing and binding: try another
        port = _free_port()
        log = open(root / "postgres.log", "ab")  # noqa: SIM115 - handed to the server process
        if as_user:
            os.chown(root / "postgres.log", int(as_user["user"]), int(as_user["group"]))  # type: ignore[call-overload]
        process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(root),
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200", "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True,
            **as_user)  # type: ignore[call-overload]
        log.close()
        server = PostgresServer(bindir, root, port, process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                server.admin("SELECT 1")
                return server
            except Exception as exc:  # noqa: BLE001 - not up yet, whatever the reason
                last_error = str(exc).strip()
                time.sleep(0.1)
        if process.poll() is None:
            process.kill()
            process.wait()
        last_error = f"{last_error}; log: {server.log.read_text(errors='replace')[-1500:]}"
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start: {last_error}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server for the whole session (fails, never skips, if it cannot start)."""
    try:
        server = start_postgres()
    except RuntimeError as exc:
        pytest.fail(f"PostgreSQL test server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """URL of a database 'handoff_test' on the session's server."""
    postgres_server.admin("CREATE DATABASE handoff_test")
    return postgres_server.url("handoff_test")


_numbers = itertools.count(1)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a new, empty database for one test (dropped after it)."""
    name = f"handoff_t{os.getpid()}_{next(_numbers)}"
    postgres_server.admin(f"CREATE DATABASE {name}")
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
