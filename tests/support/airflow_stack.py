"""A real Airflow 3.3 stack on 127.0.0.1 for tests (pytest plugin: ``support.airflow_stack``).

``start_airflow_stack(...)`` builds a temporary AIRFLOW_HOME with a SQLite database (absolute
URL), runs ``airflow db migrate``, then starts ``api-server --workers 1``, ``scheduler
--skip-serve-logs``, ``dag-processor`` and, if asked, ``triggerer --skip-serve-logs``, each in
its own process session, with the settings of /work/shared/design/FACTS.md. It returns an
``AirflowStack`` once ``/api/v2/monitor/health`` reports every started component healthy.

Fixtures (factories, so each test chooses its DAGs folder and extra environment):

    def test_x(airflow_stack_factory):            # stacks stopped after the test
        stack = airflow_stack_factory(dags_folder, env={"HANDOFF_X": "1"}, triggerer=False)
        stack = airflow_stack_factory(dags_folder, metadata_db="postgresql+psycopg2://...")  # on PostgreSQL

    module_airflow_stack_factory                  # the same, stopped after the module

``env`` is given to every process (so tasks and their callbacks see it). The stack also sets
HANDOFF_AIRFLOW_API_URL / _USERNAME / _PASSWORD for its own API unless ``env`` sets them.
Runs are created only by the test: the scheduler creates none from schedules
(``[scheduler] use_job_schedule = False``), so a test's trigger never collides with one.
Besides the stack's admin user (handoff's API user), a second user, ``operator`` (role USER),
stands for a person acting in the UI or the API: ``stack.operator_api``; a third, ``reader``
(role VIEWER), may read but not edit: ``stack.viewer_api``.
A stack that cannot start fails the test with its logs' tail; nothing is ever skipped.
Teardown sends SIGTERM to each process group, waits, sends SIGKILL, and fails if any process
of the stack's sessions (task processes included) is still alive.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from handoff.airflow_api import AirflowApi, AirflowApiConfig
from handoff.errors import HandoffError

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
STARTUP_TIMEOUT = 180.0  # seconds from the first process start to a healthy stack (a loaded 2-core machine)
STOP_GRACE = 15.0  # seconds between SIGTERM and SIGKILL
API_TIMEOUT = 30.0  # seconds per request (a loaded api-server waiting for SQLite's lock)
TRIGGER_TIMEOUT = 180.0  # seconds a trigger keeps retrying a POST that failed without creating the run
SQLITE_BUSY_TIMEOUT = 60.0  # seconds an Airflow process waits for SQLite's write lock (Python's default: 5)
WAIT_TIMEOUT = 240.0  # default bound of a wait on a state (a loaded 2-core machine; a wait ends at the state)
TERMINAL_RUN_STATES = ("success", "failed")
OPERATOR = "operator"  # a person's account on every stack (role USER)
VIEWER = "reader"  # a read-only account on every stack (role VIEWER), the operator's password


class StackError(AssertionError):
    """The stack failed to start or a wait ran out; the message carries the logs' tail."""


@dataclass
class AirflowStack:
    """A running stack: its URL, credentials, an API client and helpers for tests."""

    home: Path
    dags_folder: Path
    port: int
    username: str
    password: str = field(repr=False)
    env: dict[str, str] = field(repr=False)
    operator_password: str = field(default="", repr=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    stopped: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_config(self) -> AirflowApiConfig:
        return AirflowApiConfig(self.base_url, self.username, self.password, timeout=API_TIMEOUT)

    @property
    def airflow_api(self) -> AirflowApi:
        return AirflowApi(self.api_config)

    @property
    def operator_api(self) -> AirflowApi:
        """The API as the person ``operator`` (role USER), not as handoff's own user."""
        return AirflowApi(AirflowApiConfig(self.base_url, OPERATOR, self.operator_password, timeout=API_TIMEOUT))

    @property
    def viewer_api(self) -> AirflowApi:
        """The API as ``reader`` (role VIEWER: may read, may not edit task instances)."""
        return AirflowApi(AirflowApiConfig(self.base_url, VIEWER, self.operator_password, timeout=API_TIMEOUT))

    # -- commands ------------------------------------------------------------------------

    def airflow(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` with the stack's environment; fail the test if it fails."""
        return _run([AIRFLOW, *args], self.env, self.home, timeout)

    def create_pool(self, name: str, slots: int, description: str = "handoff test pool") -> None:
        """Create (or resize) a pool through the REST API: no `airflow` CLI process, whose start
        alone took over 60 s on a loaded 2-core machine."""
        api = self.airflow_api
        body = {"name": name, "slots": slots, "description": description, "include_deferred": False}
        status, answer = api.request("POST", "/api/v2/pools", body=body)
        if status == 409:
            status, answer = api.request("PATCH", f"/api/v2/pools/{_quote(name)}", body=body)
        if status not in (200, 201):
            raise StackError(f"creating pool {name!r} answered {status}: {answer}")

    def trigger(self, dag_id: str, logical_date: datetime | None, *,
                conf: Mapping[str, Any] | None = None, run_id: str | None = None,
                timeout: float = TRIGGER_TIMEOUT) -> str:
        """Trigger a run (logical date None: a run without one); returns its run id.

        Idempotent, so that a loaded machine cannot make it flaky: the run id is fixed before the
        first POST (``manual__<logical date>`` unless given), and a POST that fails (5xx — e.g.
        SQLite "database is locked" —, 409, or a connection lost after sending) is answered by
        reading that run back: if it exists, it is the run (our own POST created it); if another
        run holds the logical date, that is a collision the test must hear about; otherwise the
        POST is sent again, with backoff, until ``timeout`` seconds have passed.
        """
        run_id = run_id or _run_id_for(logical_date)
        api = self.airflow_api
        deadline = time.monotonic() + timeout
        delay, attempts = 0.5, 0
        while True:
            attempts += 1
            try:
                run = api.trigger_dag_run(dag_id, logical_date=logical_date, conf=conf, run_id=run_id)
                return str(run["dag_run_id"])
            except HandoffError as error:  # the POST failed; did it create the run anyway?
                failure = str(error)
            existing = self._existing_run(dag_id, run_id, logical_date)
            if existing == run_id:
                return run_id
            if existing is not None:
                raise StackError(f"triggering {dag_id} at {logical_date}: run {existing!r} already holds that "
                                 f"logical date (not created by this test; {failure})\n{self.logs_tail()}")
            if time.monotonic() + delay > deadline:
                raise StackError(f"triggering {dag_id} at {logical_date} failed {attempts} time(s) in "
                                 f"{timeout:.0f}s; last: {failure}\n{self.logs_tail()}")
            self.check_alive()
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _existing_run(self, dag_id: str, run_id: str, logical_date: datetime | None) -> str | None:
        """The run id of the run ``run_id`` if it exists, else of a run at ``logical_date``, else None
        (also None when the API cannot answer now: the caller retries)."""
        api = self.airflow_api
        try:
            status, _ = api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}")
            if status == 200:
                return run_id
            if status != 404 or logical_date is None:
                return None
            same_date = api.list_dag_runs(dag_id, logical_date_gte=logical_date, logical_date_lte=logical_date)
        except HandoffError:
            return None
        return str(same_date[0]["dag_run_id"]) if same_date else None

    # -- waits ---------------------------------------------------------------------------

    def wait_for_dags(self, *dag_ids: str, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until the dag-processor has parsed and stored every DAG (and it is unpaused)."""
        api = self.airflow_api
        pending = list(dag_ids)

        def parsed() -> bool:
            for dag_id in list(pending):
                status, answer = api.request("GET", f"/api/v2/dags/{dag_id}")
                if status == 200 and not answer.get("is_paused"):
                    pending.remove(dag_id)
            return not pending

        self._wait(parsed, timeout, lambda: f"DAGs not parsed: {pending} "
                   f"(import errors: {self._import_errors()})")

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, states: Iterable[str],
                      timeout: float = WAIT_TIMEOUT) -> dict[str, Any]:
        """Wait until a task instance is in one of ``states``; returns it."""
        wanted = set(states)
        api = self.airflow_api
        seen: dict[str, Any] = {}

        def reached() -> bool:
            status, answer = api.request(
                "GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances/{task_id}")
            if status == 200:
                seen.update(answer)
                return answer.get("state") in wanted
            return False

        self._wait(reached, timeout, lambda: f"{dag_id}.{task_id} in {run_id} is "
                   f"{seen.get('state')!r}, not in {sorted(wanted)}; run: "
                   f"{self.task_states(dag_id, run_id)}")
        return seen

    def wait_for_run(self, dag_id: str, run_id: str, states: Iterable[str] = TERMINAL_RUN_STATES,
                     timeout: float = WAIT_TIMEOUT) -> dict[str, Any]:
        """Wait until a DAG run is in one of ``states`` (default: finished); returns it."""
        wanted = set(states)
        api = self.airflow_api
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(api.get_dag_run(dag_id, run_id))
            return seen.get("state") in wanted

        self._wait(reached, timeout, lambda: f"run {dag_id} {run_id} is {seen.get('state')!r}, "
                   f"not in {sorted(wanted)}; tasks: {self.task_states(dag_id, run_id)}")
        return seen

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        tis = self.airflow_api.list_task_instances(dag_id, run_id)
        return {ti["task_id"]: ti["state"] for ti in tis}

    def wait_until(self, done: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
        """Wait until ``done()`` (polled every 0.25 s, the stack checked alive each time); on timeout
        fail with ``describe()`` and the logs' tail."""
        self._wait(done, timeout, describe)

    def _wait(self, done: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
        deadline = time.monotonic() + timeout
        failure = ""
        while True:
            self.check_alive()
            try:  # an API that fails now (a loaded machine: 5xx, a timeout) is asked again
                if done():
                    return
            except HandoffError as error:
                failure = f" (last API failure: {error})"
            if time.monotonic() > deadline:
                try:
                    what = describe()
                except HandoffError as error:
                    what = f"(the API cannot say: {error})"
                raise StackError(f"timed out after {timeout:.0f}s: {what}{failure}\n{self.logs_tail()}")
            time.sleep(0.25)

    # -- diagnostics ---------------------------------------------------------------------

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead and not self.stopped:
            raise StackError(f"Airflow processes exited: {dead}\n{self.logs_tail()}")

    def logs_tail(self, lines: int = 25) -> str:
        """The last lines of each process log and of the newest task logs."""
        parts = []
        for name in self.processes:
            parts.append(_tail(self.home / f"{name}.log", lines, f"{name}.log"))
        task_logs = sorted((self.home / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
        for path in task_logs[-3:]:
            parts.append(_tail(path, lines, str(path.relative_to(self.home))))
        return "\n".join(parts)

    def _import_errors(self) -> list[str]:
        status, answer = self.airflow_api.request("GET", "/api/v2/importErrors")
        if status != 200:
            return [f"(importErrors answered {status})"]
        return [" ".join(str(e.get("stack_trace", "")).split())[-300:]
                for e in answer.get("import_errors", [])]

    # -- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM every process group, wait, SIGKILL; fail if a process of the stack survives."""
        if self.stopped:
            return
        self.stopped = True
        sessions = {p.pid for p in self.processes.values()}
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        # Whatever is left in the stack's sessions (task processes run in their own process
        # groups, but in the same session) gets SIGKILL.
        for _ in range(2):
            left = _session_members(sessions)
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            for process in self.processes.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            if not left:
                break
            time.sleep(0.5)
        survivors = _session_members(sessions)
        assert not survivors, f"stray Airflow processes after teardown: {_describe(survivors)}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_environment(home: Path, dags_folder: Path, port: int, username: str, password: str,
                      extra: Mapping[str, str] | None = None, *, metadata_db: str | None = None,
                      operator_password: str = "") -> dict[str, str]:
    """The environment every process of the stack gets (FACTS.md: Airflow 3.3). ``metadata_db``:
    a SQLAlchemy URL for Airflow's metadata database (default: a SQLite file in ``home``)."""
    passwords_file = home / "simple_auth_manager_passwords.json"
    passwords_file.write_text(json.dumps({username: password, OPERATOR: operator_password or password,
                                          VIEWER: operator_password or password}))
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db or f"sqlite:///{home.resolve() / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        # two cores: a few task slots, one parsing process
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        # new DAG files are seen within seconds
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",  # it would bind 0.0.0.0
        # runs only from the test's triggers: none from the DAGs' schedules
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # a deferred task's timeout is noticed within 2 s, not 15 s
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:admin,{OPERATOR}:user,{VIEWER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "HANDOFF_AIRFLOW_API_URL": base_url,
        "HANDOFF_AIRFLOW_API_USERNAME": username,
        "HANDOFF_AIRFLOW_API_PASSWORD": password,
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    if metadata_db is None:
        # Python's sqlite3 gives up on a locked database after 5 s; four Airflow processes writing
        # one file on a loaded 2-core machine hold it longer (the API answered 500 "database is
        # locked" to a trigger). $AIRFLOW_HOME/config is on every Airflow process's sys.path.
        (home / "config").mkdir(exist_ok=True)
        (home / "config" / "handoff_test_sqlite.py").write_text(
            f"CONNECT_ARGS = {{'timeout': {SQLITE_BUSY_TIMEOUT}}}\n"
            f"CONNECT_ARGS_ASYNC = {{'timeout': {SQLITE_BUSY_TIMEOUT}}}\n")
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = "handoff_test_sqlite.CONNECT_ARGS"
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC"] = "handoff_test_sqlite.CONNECT_ARGS_ASYNC"
    env.update(extra or {})
    return env


def start_airflow_stack(home: Path, dags_folder: Path, *, env: Mapping[str, str] | None = None,
                        triggerer: bool = False, username: str = "admin", metadata_db: str | None = None,
                        startup_timeout: float = STARTUP_TIMEOUT) -> AirflowStack:
    """Migrate a new metadata database (SQLite, or the empty database ``metadata_db`` names) and
    start the stack; fail with its logs if it cannot."""
    home.mkdir(parents=True, exist_ok=True)
    dags_folder = dags_folder.resolve()
    password, operator_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    port = free_port()
    stack_env = stack_environment(home, dags_folder, port, username, password, env, metadata_db=metadata_db,
                                  operator_password=operator_password)
    stack = AirflowStack(home, dags_folder, port, username, password, stack_env, operator_password=operator_password)
    _run([AIRFLOW, "db", "migrate"], stack_env, home, timeout=300)
    commands = {
        "api-server": [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port),
                       "--workers", "1"],
        "scheduler": [AIRFLOW, "scheduler", "--skip-serve-logs"],
        "dag-processor": [AIRFLOW, "dag-processor"],
    }
    if triggerer:
        commands["triggerer"] = [AIRFLOW, "triggerer", "--skip-serve-logs"]
    try:
        for name, command in commands.items():
            log = (home / f"{name}.log").open("wb")
            stack.processes[name] = subprocess.Popen(
                command, env=stack_env, cwd=home, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
        _wait_healthy(stack, set(commands) - {"api-server"}, startup_timeout)
    except BaseException:
        with contextlib.suppress(BaseException):
            stack.stop()
        raise
    return stack


def _wait_healthy(stack: AirflowStack, components: set[str], timeout: float) -> None:
    api = stack.airflow_api
    wanted = {name.replace("-", "_") for name in components}
    health: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            status, answer = api.request("GET", "/api/v2/monitor/health", authorized=False)
        except HandoffError:
            status, answer = 0, {}
        if status == 200 and isinstance(answer, dict):
            health = answer
            states = {name: (answer.get(name) or {}).get("status") for name in wanted | {"metadatabase"}}
            if all(state == "healthy" for state in states.values()):
                api.token()  # the login works too
                return
        time.sleep(0.5)
    raise StackError(f"Airflow stack not healthy after {timeout:.0f}s: {health}\n{stack.logs_tail()}")


class _Factory:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.stacks: list[AirflowStack] = []

    def __call__(self, dags_folder: Path, *, env: Mapping[str, str] | None = None,
                 triggerer: bool = False, username: str = "admin", metadata_db: str | None = None) -> AirflowStack:
        home = self.root / f"stack{len(self.stacks)}"
        stack = start_airflow_stack(home, dags_folder, env=env, triggerer=triggerer,
                                    username=username, metadata_db=metadata_db)
        self.stacks.append(stack)
        return stack

    def stop_all(self) -> None:
        errors = []
        for stack in self.stacks:
            try:
                stack.stop()
            except AssertionError as error:
                errors.append(str(error))
        assert not errors, "; ".join(errors)


@pytest.fixture
def airflow_stack_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Factory]:
    """Start real Airflow stacks for one test: ``airflow_stack_factory(dags_folder, env=...)``."""
    factory = _Factory(tmp_path_factory.mktemp("airflow"))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def module_airflow_stack_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Factory]:
    """The same, with stacks shared by a test module and stopped after it."""
    factory = _Factory(tmp_path_factory.mktemp("airflow"))
    yield factory
    factory.stop_all()


# -- helpers ---------------------------------------------------------------------------------

def _run(command: list[str], env: Mapping[str, str], cwd: Path,
         timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command, env=dict(env), cwd=cwd, capture_output=True, text=True, check=False,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        raise StackError(f"{' '.join(command[1:])} timed out after {timeout:.0f}s:\n"
                         f"{_last_lines(str(error.stdout or '') + str(error.stderr or ''), 40)}") from None
    if done.returncode != 0:
        raise StackError(f"{' '.join(command[1:])} exited {done.returncode}:\n"
                         f"{_last_lines(done.stdout + done.stderr, 40)}")
    return done


def _run_id_for(logical_date: datetime | None) -> str:
    """A run id fixed before the trigger is sent (Airflow's own shape: ``manual__<date>``)."""
    if logical_date is None:
        return f"manual__{datetime.now(timezone.utc).isoformat()}_{secrets.token_hex(4)}"
    return f"manual__{logical_date.isoformat()}"


def _quote(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="~")


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _session_members(sessions: set[int]) -> list[int]:
    """Live processes (not zombies) whose session id is one of ``sessions``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        state, session = fields[0], int(fields[3])
        if session in sessions and state != "Z":
            members.append(int(entry.name))
    return members


def _describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
            out.append(f"{pid}: {cmd.decode(errors='replace')[:120]}")
        except OSError:
            out.append(str(pid))
    return "; ".join(out)


def _tail(path: Path, lines: int, label: str) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"--- {label}: (none)"
    return f"--- {label} (last {lines} lines)\n{_last_lines(text, lines)}"


def _last_lines(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])
