"""A Slack-compatible incoming-webhook receiver on 127.0.0.1 for tests: it records every request.

    with SlackReceiver() as slack:
        url = slack.url("T0TEST/B0FIN/finance")         # http://127.0.0.1:PORT/services/T0TEST/B0FIN/finance
        ...                                             # point an Airflow connection at it
        slack.wait_for(2, timeout=60)                   # at least 2 requests recorded
        [r.body["text"] for r in slack.requests]        # what was posted, in order

Like Slack, it answers ``200 ok`` to a JSON body with ``text`` or ``blocks``, ``400
invalid_payload`` otherwise, ``404 no_service`` for a path that is not ``/services/...``.
``fail_next(n, status, answer)`` makes the next ``n`` requests fail (e.g. 500; the answer may echo
the path) to test retries and redaction. It runs in a
thread of the test process and stops with the ``with`` block (or ``stop()``).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    """One request as received: path, headers, the parsed JSON body (None if not JSON), the answer."""

    path: str
    headers: dict[str, str]
    body: Any
    status: int
    at: float = field(default_factory=time.time)

    @property
    def channel_path(self) -> str:
        """The webhook's path after /services/ (which webhook, i.e. which channel, was posted to)."""
        return self.path.removeprefix("/services/")


class SlackReceiver:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._failures: list[tuple[int, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = None
                status, answer = receiver._answer(self.path, body)
                receiver._record(Request(self.path, dict(self.headers.items()), body, status))
                payload = answer.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-receiver", daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/services/{path}"

    def fail_next(self, count: int, status: int = 500, answer: str = "server_error") -> None:
        """The next ``count`` requests get ``status`` and ``answer`` ("{path}" in it: the request's
        path, as a server echoing it would)."""
        with self._lock:
            self._failures.extend([(status, answer)] * count)

    def _answer(self, path: str, body: Any) -> tuple[int, str]:
        with self._lock:
            if self._failures:
                status, answer = self._failures.pop(0)
                return status, answer.replace("{path}", path)
        if not path.startswith("/services/"):
            return 404, "no_service"
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return 400, "invalid_payload"
        return 200, "ok"

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def accepted(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    def wait_for(self, count: int, timeout: float, *, accepted: bool = True) -> list[Request]:
        """Wait until at least ``count`` (accepted) requests arrived; returns them. Fails with what came."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.accepted() if accepted else list(self.requests)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} request(s) after {timeout:.0f}s, wanted {count}: "
                                     f"{[(r.path, r.status, (r.body or {}).get('text', '')[:80]) for r in self.requests]}")
            time.sleep(0.1)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SlackReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
