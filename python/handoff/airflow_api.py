"""A small client of Airflow 3's public REST API (v2), on the standard library only.

Paths and parameters follow the OpenAPI document shipped with apache-airflow 3.3
(airflow/api_fastapi/core_api/openapi/v2-rest-api-generated.yaml) and the simple auth
manager's ``POST /auth/token``. It does not import Airflow, so a task's callback, the sweep
and the CLI can all use it.

Errors are ``HandoffError`` with one line naming the method, URL and HTTP status. Credentials
and tokens never appear in messages or logs.

Over 400 lines on purpose: one client — every endpoint handoff calls with its paging, retries,
token refresh and error mapping — reads best as one file.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handoff.errors import HandoffError
from handoff.redact import get_logger, redact

log = get_logger(__name__)

ENV_URL = "HANDOFF_AIRFLOW_API_URL"
ENV_USERNAME = "HANDOFF_AIRFLOW_API_USERNAME"
ENV_PASSWORD = "HANDOFF_AIRFLOW_API_PASSWORD"  # noqa: S105 - the variable's name, not a password
ENV_TIMEOUT = "HANDOFF_AIRFLOW_API_TIMEOUT"

PAGE_LIMIT = 100  # Airflow's default [api] maximum_page_limit
# 500 too: Airflow answers 500 "Database error" when its metadata DB is busy (seen with SQLite's
# 5 s lock timeout under many heartbeating sensors); every retried call is idempotent.
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_SECRET_HINT = f"check {ENV_USERNAME} and {ENV_PASSWORD}"
MAX_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class AirflowApiConfig:
    """Where the API is and how to log in. The password is kept out of ``repr``."""

    base_url: str
    username: str
    password: str = field(repr=False)
    timeout: float = 10.0  # seconds, per request
    attempts: int = 3  # tries per request when the connection fails
    retry_delay: float = 0.5  # seconds before the 2nd try, doubled each time

    def __post_init__(self) -> None:
        url = self.base_url.strip().rstrip("/")
        url = url.removesuffix("/api/v2")
        object.__setattr__(self, "base_url", url)
        _check_base_url(url)
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)) or not (
                math.isfinite(self.timeout) and 0 < self.timeout <= MAX_TIMEOUT_S):
            raise HandoffError(f"API timeout {self.timeout!r} is not a number of seconds in (0, {MAX_TIMEOUT_S:g}]",
                               where=ENV_TIMEOUT, hint="e.g. 10")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AirflowApiConfig:
        """Read HANDOFF_AIRFLOW_API_URL / _USERNAME / _PASSWORD (and optional _TIMEOUT, seconds)."""
        env = os.environ if environ is None else environ
        missing = [name for name in (ENV_URL, ENV_USERNAME, ENV_PASSWORD) if not env.get(name)]
        if missing:
            raise HandoffError(f"Airflow API settings missing: {', '.join(missing)}",
                               hint="set them in the environment of the Airflow workers")
        timeout = env.get(ENV_TIMEOUT)
        try:
            seconds = float(timeout) if timeout is not None else 10.0
        except ValueError:
            raise HandoffError(f"{ENV_TIMEOUT}={timeout!r} is not a number of seconds",
                               hint=f"e.g. {ENV_TIMEOUT}=10") from None
        return cls(env[ENV_URL], env[ENV_USERNAME], env[ENV_PASSWORD], timeout=seconds)


def _check_base_url(url: str) -> None:
    """The API's base URL, checked when the settings are read (never at the first request, where
    http.client's errors quote pieces of it): ``http``/``https``, a host, a numeric port in
    1-65535, no user info, query or fragment. Credentials are the separate _USERNAME/_PASSWORD
    settings, so any ``@`` is refused without quoting the URL: in ``http://u:S3c/ret@host`` a
    parser sees host ``u`` and "port" ``S3c``, the password's head. Messages that do quote the URL
    quote its redaction (``handoff.redact``), and a bad port is never quoted."""
    hint = "e.g. http://127.0.0.1:8080"
    if "@" in url:  # before anything quotes the URL: never echo what it carries
        raise HandoffError("the Airflow API URL must not carry credentials (it holds an '@')", where=ENV_URL,
                           hint=f"give scheme://host:port only and set {ENV_USERNAME} and {ENV_PASSWORD}")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise HandoffError("the Airflow API URL holds a blank or a control character", where=ENV_URL, hint=hint)
    try:
        parsed = urllib.parse.urlsplit(url)
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise HandoffError(f"Airflow API URL {redact(url)!r} is not an http(s) URL", where=ENV_URL, hint=hint)
    if not parsed.hostname:
        raise HandoffError(f"Airflow API URL {redact(url)!r} names no host", where=ENV_URL, hint=hint)
    try:
        port = parsed.port
    except ValueError:
        port = 0
    if port == 0 or (":" in parsed.netloc.rsplit("]", 1)[-1] and port is None):
        raise HandoffError("the Airflow API URL's port is not a number in 1-65535", where=ENV_URL,
                           hint=f"{hint} (the value is not shown: it may be part of a password)")
    if parsed.query or parsed.fragment or url.endswith(("?", "#")):
        raise HandoffError(f"Airflow API URL {redact(url.split('?', 1)[0].split('#', 1)[0])!r} has a query "
                           "or fragment", where=ENV_URL, hint=f"give the api-server's base address, {hint}")


class AirflowApi:
    """Calls to the Airflow 3 REST API v2 with a JWT from ``POST /auth/token``."""

    def __init__(self, config: AirflowApiConfig) -> None:
        self.config = config
        self._token: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AirflowApi:
        return cls(AirflowApiConfig.from_env(environ))

    @classmethod
    def with_token(cls, base_url: str, token: str, *, timeout: float = 10.0) -> AirflowApi:
        """A client that sends an existing JWT (the signed-in user's: the web pages) instead of logging in.
        When the token is refused the calls fail (there is no password to log in again with)."""
        api = cls(AirflowApiConfig(base_url, "", "", timeout=timeout))
        api._token = token
        return api

    # -- authentication ------------------------------------------------------------------

    def token(self) -> str:
        """A JWT for the configured user (fetched once, again after a 401)."""
        if self._token is None:
            body = {"username": self.config.username, "password": self.config.password}
            status, answer = self.request("POST", "/auth/token", body=body, authorized=False)
            if status == 401 or status == 403:
                raise self._error("POST", "/auth/token", status, answer, hint=_SECRET_HINT)
            if status != 201 and status != 200:
                raise self._error("POST", "/auth/token", status, answer)
            token = answer.get("access_token") if isinstance(answer, dict) else None
            if not isinstance(token, str) or not token:
                raise self._error("POST", "/auth/token", status, answer,
                                  hint=f"no access_token in the answer: is {ENV_URL} the Airflow api-server's address?")
            self._token = token
        return self._token

    # -- health, DAGs, DAG runs ----------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health`` (no login needed)."""
        return self._call("GET", "/api/v2/monitor/health", authorized=False)

    def get_dag(self, dag_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v2/dags/{_seg(dag_id)}")

    def get_dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}")

    def list_dag_runs(self, dag_id: str, *, logical_date_gte: datetime | None = None,
                      logical_date_lte: datetime | None = None,
                      states: Iterable[str] = ()) -> list[dict[str, Any]]:
        """DAG runs of ``dag_id`` (``~`` for all DAGs) with a logical date in [gte, lte], all pages."""
        params = {"logical_date_gte": logical_date_gte, "logical_date_lte": logical_date_lte,
                  "state": list(states), "order_by": "logical_date"}
        return self._pages(f"/api/v2/dags/{_seg(dag_id)}/dagRuns", params, "dag_runs")

    def trigger_dag_run(self, dag_id: str, *, logical_date: datetime | None,
                        conf: Mapping[str, Any] | None = None, run_id: str | None = None,
                        note: str | None = None) -> dict[str, Any]:
        """``POST /api/v2/dags/{dag}/dagRuns``. ``logical_date`` None makes a run without one."""
        body: dict[str, Any] = {"logical_date": _iso(logical_date) if logical_date else None,
                                "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        if note is not None:
            body["note"] = note
        # Not retried once sent: a second POST could create a second run.
        return self._call("POST", f"/api/v2/dags/{_seg(dag_id)}/dagRuns", body=body,
                          expect=(200,), idempotent=False)

    # -- task instances ------------------------------------------------------------------

    def get_task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self._call("GET", _ti_path(dag_id, run_id, task_id))

    def find_task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any] | None:
        """The task instance, or None when the run or the task does not exist (404)."""
        path = _ti_path(dag_id, run_id, task_id)
        status, answer = self.request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise self._error("GET", path, status, answer)
        return answer if isinstance(answer, dict) else {}

    def list_task_instances(self, dag_id: str = "~", run_id: str = "~", *,
                            task_id: str | None = None, states: Iterable[str] = (),
                            logical_date_gte: datetime | None = None,
                            logical_date_lte: datetime | None = None,
                            end_date_gte: datetime | None = None,
                            updated_at_gte: datetime | None = None) -> list[dict[str, Any]]:
        """Task instances, all pages. ``~`` as dag_id or run_id means every DAG / every run.

        ``states`` are TaskInstanceState values: success, failed, upstream_failed, running...
        (a task instance that has no state yet cannot be selected by state).
        """
        params = {"task_id": task_id, "state": list(states), "logical_date_gte": logical_date_gte,
                  "logical_date_lte": logical_date_lte, "end_date_gte": end_date_gte,
                  "updated_at_gte": updated_at_gte, "order_by": "id"}
        path = f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances"
        return self._pages(path, params, "task_instances")

    def list_tasks(self, dag_id: str) -> list[dict[str, Any]]:
        """``GET /api/v2/dags/{dag}/tasks``: the DAG's tasks (``task_id``, ``downstream_task_ids``...)."""
        path = f"/api/v2/dags/{_seg(dag_id)}/tasks"
        answer = self._call("GET", path)
        tasks = answer.get("tasks")
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            raise HandoffError(f"Airflow API GET {self._url(path)} answered without a list of tasks",
                               hint=f"is {ENV_URL} the Airflow api-server's address?")
        return tasks

    def recent_successes(self, since: datetime, *, dag_id: str = "~",
                         task_id: str | None = None) -> list[dict[str, Any]]:
        """Task instances that ended in success at or after ``since`` (for the periodic sweep)."""
        return self.list_task_instances(dag_id, "~", task_id=task_id, states=["success"],
                                        end_date_gte=since)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The text of one try's log, one event per line (e.g. to tell a sensor timeout apart)."""
        path = f"{_ti_path(dag_id, run_id, task_id)}/logs/{int(try_number)}"
        answer = self._call("GET", path, params={"full_content": "true"})
        lines = []
        for item in answer.get("content") or []:
            if isinstance(item, dict):
                extra = {k: v for k, v in item.items() if k not in ("timestamp", "event")}
                lines.append(" ".join(str(x) for x in (item.get("event", ""), extra or "") if x))
            else:
                lines.append(str(item))
        return "\n".join(lines)

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str = "success",
                       *, note: str | None = None) -> bool:
        """Set one task instance's state; True if it changed, False if it already had it (409).

        ``PATCH .../taskInstances/{task}`` with ``new_state`` only: never ``include_downstream``,
        which would mark the downstream tasks success without running them. Airflow itself
        then clears the task's failed and upstream_failed dependants in that run, and the
        scheduler re-runs them (see docs/recovery.md).
        """
        body: dict[str, Any] = {"new_state": state}
        if note is not None:
            body["note"] = note
        path = _ti_path(dag_id, run_id, task_id)
        status, answer = self.request("PATCH", path, body=body)
        if status == 409:
            log.info("%s.%s in %s is already %s", dag_id, task_id, run_id, state)
            return False
        if status == 403:
            raise self._error("PATCH", path, status, answer,
                              hint=self._may_not_edit())
        if status != 200:
            raise self._error("PATCH", path, status, answer)
        return True

    # -- handoff's own state write (handoff.airflow.batch_api, served by the plugin) ------

    def can_settle(self, dag_id: str) -> bool:
        """``GET /handoff/api/batch/dags/{dag}``: True when the api-server has handoff's plugin and the
        user may edit the DAG's task instances; False when the route is not there (404: the
        api-server runs without handoff). Raises HandoffError for any other answer (403: the user
        may not edit task instances of this DAG)."""
        path = f"/handoff/api/batch/dags/{_seg(dag_id)}"
        status, answer = self.request("GET", path)
        if status == 404:
            return False
        if status == 403:
            raise self._error("GET", path, status, answer,
                              hint=self._may_not_edit())
        if status != 200 or not isinstance(answer, dict) or answer.get("settle") is not True:
            raise self._error("GET", path, status, answer)
        return True

    def settle_task_states(self, dag_id: str, run_id: str,
                           items: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        """Settle task instances of one run that have no state yet, in one transaction:
        ``POST /handoff/api/batch/dags/{dag}/dagRuns/{run}/settle``. ``items``: {"task_id", "state"
        ("success" | "failed"), "note", "start_date", "end_date" (ISO 8601 with offset)}. Returns
        {task_id: "ok" | "already <state>" | "not found"}. Sent once (the caller re-reads the states
        when the answer does not come); raises HandoffError when the request is refused."""
        body = {"task_instances": [dict(item) for item in items]}
        if not body["task_instances"]:
            return {}
        path = f"/handoff/api/batch/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/settle"
        status, answer = self.request("POST", path, body=body, idempotent=False)
        if status == 403:
            raise self._error("POST", path, status, answer,
                              hint=self._may_not_edit())
        results = answer.get("results") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(results, dict):
            raise self._error("POST", path, status, answer)
        return {str(k): str(v) for k, v in results.items()}

    # -- event log (Airflow's audit log) --------------------------------------------------

    def list_event_logs(self, dag_id: str, *, run_id: str | None = None, task_id: str | None = None,
                        events: Iterable[str] = (), after: datetime | None = None) -> list[dict[str, Any]]:
        """``GET /api/v2/eventLogs`` of one DAG (optionally one run / task / event names), oldest first.

        Rows: event_log_id, when, dag_id, task_id, run_id, try_number, event, owner, extra (a JSON
        string). Airflow writes one for every state a task's own process reports (event = the
        state, with its try_number) and one for every call of the REST API (and so of the UI) that
        changes something (event = the endpoint, owner = the user, extra = the request body).
        Reading it needs the audit-log permission.
        """
        params = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "included_events": list(events),
                  "after": after, "order_by": "id"}
        return self._pages("/api/v2/eventLogs", params, "event_logs")

    # -- plumbing ------------------------------------------------------------------------

    def _pages(self, path: str, params: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", path, params={**params, "limit": PAGE_LIMIT, "offset": len(rows)})
            batch = page.get(key) or []
            if not isinstance(batch, list) or not all(isinstance(row, dict) for row in batch):
                raise HandoffError(f"Airflow API GET {self._url(path)} answered without a list of {key}",
                                   hint=f"is {ENV_URL} the Airflow api-server's address?")
            rows.extend(batch)
            total = page.get("total_entries")
            if len(batch) < PAGE_LIMIT or (isinstance(total, int) and len(rows) >= total):
                return rows

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              body: Any = None, expect: tuple[int, ...] = (200,), authorized: bool = True,
              idempotent: bool = True) -> dict[str, Any]:
        status, answer = self.request(method, path, params=params, body=body,
                                    authorized=authorized, idempotent=idempotent)
        if status not in expect:
            raise self._error(method, path, status, answer)
        if not isinstance(answer, dict):
            raise self._error(method, path, status, answer, hint=f"is {ENV_URL} the Airflow api-server's address?")
        return answer

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None, authorized: bool = True,
                idempotent: bool = True) -> tuple[int, Any]:
        """One request (a 401 refreshes the token once); returns (status, decoded JSON or text).

        Connection failures are retried (only before anything was sent when not idempotent)
        and end in HandoffError; HTTP error statuses are returned, not raised.
        """
        status, answer = self._attempts(method, path, params, body, authorized, idempotent)
        if status == 401 and authorized:
            self._token = None
            status, answer = self._attempts(method, path, params, body, authorized, idempotent)
            if status == 401:
                raise self._error(method, path, status, answer, hint=_SECRET_HINT)
        return status, answer

    def _attempts(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any,
                  authorized: bool, idempotent: bool) -> tuple[int, Any]:
        url = self._url(path) + _query(params)
        data = None if body is None else json.dumps(body).encode()
        delay = self.config.retry_delay
        attempts = max(1, self.config.attempts)
        for attempt in range(1, attempts + 1):
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            if authorized:
                headers["Authorization"] = f"Bearer {self.token()}"
            # the base URL's scheme is http(s), checked when the config is made
            request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout) as response:  # noqa: S310
                    status, raw = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, raw = error.code, error.read()
            except (urllib.error.URLError, OSError) as error:  # refused, reset, timeout, DNS
                reason = getattr(error, "reason", error)
                sent = not isinstance(reason, (ConnectionRefusedError, socket.gaierror))
                if attempt == attempts or (sent and not idempotent):
                    raise HandoffError(
                        f"cannot reach the Airflow API: {method} {url} failed after {attempt} "
                        f"attempt(s): {_reason(reason)}",
                        hint=f"check {ENV_URL} and that the Airflow api-server is running") from None
                log.debug("%s %s: %s; retrying in %.1fs", method, url, _reason(reason), delay)
                time.sleep(delay)
                delay *= 2
                continue
            log.debug("%s %s -> %s", method, url, status)
            if status in _RETRY_STATUSES and idempotent and attempt < attempts:
                time.sleep(delay)
                delay *= 2
                continue
            return status, _decode(raw)
        raise AssertionError("unreachable")  # pragma: no cover

    def _url(self, path: str) -> str:
        return self.config.base_url + path

    def _error(self, method: str, path: str, status: int, answer: Any,
               hint: str | None = None) -> HandoffError:
        if isinstance(answer, str) and answer.lstrip()[:1] == "<":
            text = "an HTML page, not JSON"
        else:
            detail = answer.get("detail") if isinstance(answer, dict) else answer
            text = detail if isinstance(detail, str) else json.dumps(detail, default=str)
            text = " ".join(redact(text, self._secrets()).split())[:300]
        return HandoffError(f"Airflow API {method} {self._url(path)} answered {status}: {text}",
                            hint=hint)

    def _may_not_edit(self) -> str:
        """The hint of a 403 on a state write."""
        return f"user '{self.config.username}' may not edit task instances of this DAG"

    def _secrets(self) -> tuple[str | None, ...]:
        """What a response body must never show, whatever its shape."""
        return (self.config.password, self._token)


def _seg(value: str) -> str:
    """A path segment: run ids hold ':' and '+', which must be escaped."""
    return urllib.parse.quote(value, safe="~")


def _ti_path(dag_id: str, run_id: str, task_id: str) -> str:
    return f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware datetime")
    return moment.isoformat()


def _query(params: Mapping[str, Any] | None) -> str:
    if not params:
        return ""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None or value == []:
            continue
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, _iso(item) if isinstance(item, datetime) else str(item)))
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


def _reason(reason: object) -> str:
    return " ".join(str(reason).split()) or type(reason).__name__
