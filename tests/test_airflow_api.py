"""handoff.airflow_api against a scripted local HTTP server (fast; the real stack is in
tests/test_airflow_recovery_probe.py)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from handoff.airflow_api import AirflowApi, AirflowApiConfig
from handoff.errors import HandoffError

PASSWORD = "pa55-w0rd-never-shown"
TOKEN = "jwt-token-never-shown"

Reply = tuple[int, Any] | None  # None: drop the connection without answering


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[tuple[str, str], Callable[[dict[str, Any]], Reply]] = {}

    def route(self, method: str, path: str, reply: Callable[[dict[str, Any]], Reply] | Reply) -> None:
        self.routes[(method, path)] = reply if callable(reply) else (lambda _request: reply)


@pytest.fixture
def server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    recorder.route("POST", "/auth/token", (201, {"access_token": TOKEN}))

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            request = {"method": self.command, "path": unquote(split.path), "raw_path": self.path,
                       "query": parse_qs(split.query), "body": body,
                       "authorization": self.headers.get("Authorization")}
            recorder.requests.append(request)
            route = recorder.routes.get((self.command, request["path"]))
            reply = route(request) if route else (404, {"detail": "Not Found"})
            if reply is None:
                self.close_connection = True
                return
            status, payload = reply
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _handle

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", recorder
    httpd.shutdown()
    httpd.server_close()


def client(url: str, **overrides: Any) -> AirflowApi:
    settings = {"attempts": 3, "retry_delay": 0.01, "timeout": 2.0, **overrides}
    return AirflowApi(AirflowApiConfig(url, "handoff", PASSWORD, **settings))


def test_config_from_env() -> None:
    config = AirflowApiConfig.from_env({
        "HANDOFF_AIRFLOW_API_URL": "http://127.0.0.1:8080/api/v2/",
        "HANDOFF_AIRFLOW_API_USERNAME": "handoff", "HANDOFF_AIRFLOW_API_PASSWORD": PASSWORD,
        "HANDOFF_AIRFLOW_API_TIMEOUT": "3"})
    assert config.base_url == "http://127.0.0.1:8080" and config.timeout == 3.0
    assert PASSWORD not in repr(config)


def test_config_names_what_is_missing_never_values() -> None:
    with pytest.raises(HandoffError) as caught:
        AirflowApiConfig.from_env({"HANDOFF_AIRFLOW_API_PASSWORD": PASSWORD})
    message = str(caught.value)
    assert "HANDOFF_AIRFLOW_API_URL" in message and "HANDOFF_AIRFLOW_API_USERNAME" in message
    assert "HANDOFF_AIRFLOW_API_PASSWORD" not in message and PASSWORD not in message


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://host", "http://user:pw@host:8080"])
def test_config_refuses_bad_urls(url: str) -> None:
    with pytest.raises(HandoffError) as caught:
        AirflowApiConfig(url, "handoff", PASSWORD)
    assert "pw@" not in str(caught.value)


def test_set_task_state_sends_new_state_only(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    run_id = "scheduled__2024-03-10T05:00:00+00:00"
    path = f"/api/v2/dags/sales/dagRuns/{run_id}/taskInstances/wait__orders"
    recorder.route("PATCH", path, (200, {"task_instances": [], "total_entries": 1}))
    assert client(url).set_task_state("sales", run_id, "wait__orders", "success") is True
    login, patch = recorder.requests
    assert login["body"] == {"username": "handoff", "password": PASSWORD}
    assert patch["body"] == {"new_state": "success"}  # never include_downstream
    assert patch["authorization"] == f"Bearer {TOKEN}"
    assert "%3A" in patch["raw_path"] and "%2B" in patch["raw_path"]  # ':' and '+' escaped


def test_set_task_state_treats_409_as_done(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    recorder.route("PATCH", "/api/v2/dags/d/dagRuns/r/taskInstances/t",
                   (409, {"detail": "Task id t is already in success state"}))
    assert client(url).set_task_state("d", "r", "t") is False


def test_an_expired_token_is_renewed_once(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    calls = []

    def dag_run(request: dict[str, Any]) -> Reply:
        calls.append(request)
        return (401, {"detail": "expired"}) if len(calls) == 1 else (200, {"state": "success"})

    recorder.route("GET", "/api/v2/dags/d/dagRuns/r", dag_run)
    assert client(url).get_dag_run("d", "r") == {"state": "success"}
    assert [r["path"] for r in recorder.requests].count("/auth/token") == 2


def test_errors_are_one_line_with_url_and_status_and_no_secret(
        server: tuple[str, Recorder], caplog: pytest.LogCaptureFixture) -> None:
    url, recorder = server
    recorder.route("GET", "/api/v2/dags/d/dagRuns/r",
                   (500, {"detail": {"reason": "boom", "lines": "a\nb"}}))
    caplog.set_level(logging.DEBUG, logger="handoff")
    with pytest.raises(HandoffError) as caught:
        client(url).get_dag_run("d", "r")
    message = str(caught.value)
    assert message.startswith(f"Airflow API GET {url}/api/v2/dags/d/dagRuns/r answered 500: ")
    assert "\n" not in message and "boom" in message
    for text in (message, caplog.text):
        assert PASSWORD not in text and TOKEN not in text


def test_bad_credentials(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    recorder.route("POST", "/auth/token", (401, {"detail": "Invalid credentials"}))
    with pytest.raises(HandoffError) as caught:
        client(url).set_task_state("d", "r", "t")
    message = str(caught.value)
    assert f"POST {url}/auth/token answered 401: Invalid credentials" in message
    assert "HANDOFF_AIRFLOW_API_PASSWORD" in message and PASSWORD not in message


def test_unavailable_is_retried_for_reads(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    replies = iter([(503, {"detail": "starting"}), (503, {"detail": "starting"}), (200, {"ok": 1})])
    recorder.route("GET", "/api/v2/monitor/health", lambda _r: next(replies))
    assert client(url).health() == {"ok": 1}


def test_a_busy_database_is_retried_for_the_patch(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    replies = iter([(500, {"reason": "Database error"}), (200, {"task_instances": []})])
    recorder.route("PATCH", "/api/v2/dags/d/dagRuns/r/taskInstances/t", lambda _r: next(replies))
    assert client(url).set_task_state("d", "r", "t") is True


def test_a_trigger_is_not_sent_twice(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    recorder.route("POST", "/api/v2/dags/d/dagRuns", None)  # the connection drops
    with pytest.raises(HandoffError) as caught:
        client(url).trigger_dag_run("d", logical_date=datetime(2024, 3, 10, 5, tzinfo=timezone.utc))
    assert "after 1 attempt(s)" in str(caught.value)
    posts = [r for r in recorder.requests if r["path"] == "/api/v2/dags/d/dagRuns"]
    assert len(posts) == 1 and posts[0]["body"]["logical_date"] == "2024-03-10T05:00:00+00:00"


def test_lists_read_every_page_and_encode_filters(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    rows = [{"task_id": f"t{i}", "state": "success"} for i in range(250)]

    def page(request: dict[str, Any]) -> Reply:
        offset, limit = int(request["query"]["offset"][0]), int(request["query"]["limit"][0])
        return 200, {"task_instances": rows[offset:offset + limit], "total_entries": len(rows)}

    recorder.route("GET", "/api/v2/dags/~/dagRuns/~/taskInstances", page)
    since = datetime(2024, 3, 10, 5, tzinfo=timezone.utc)
    assert client(url).recent_successes(since) == rows
    first = recorder.requests[1]["query"]
    assert first["state"] == ["success"] and first["end_date_gte"] == ["2024-03-10T05:00:00+00:00"]
    assert len(recorder.requests) == 1 + 3


def test_dag_runs_by_logical_date_range(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    recorder.route("GET", "/api/v2/dags/sales/dagRuns", (200, {"dag_runs": [{"dag_run_id": "x"}],
                                                               "total_entries": 1}))
    runs = client(url).list_dag_runs("sales", logical_date_gte=datetime(2024, 3, 10, tzinfo=timezone.utc),
                                     logical_date_lte=datetime(2024, 3, 11, tzinfo=timezone.utc),
                                     states=["failed", "running"])
    assert runs == [{"dag_run_id": "x"}]
    query = recorder.requests[-1]["query"]
    assert query["logical_date_gte"] == ["2024-03-10T00:00:00+00:00"]
    assert query["logical_date_lte"] == ["2024-03-11T00:00:00+00:00"]
    assert query["state"] == ["failed", "running"]
