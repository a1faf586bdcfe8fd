"""A local Slack-style alert endpoint: a real HTTP server on 127.0.0.1 recording POSTed bodies.

``mlchaos demo`` points the example's alerts at it; tests use it (through
:mod:`mlchaos_orchestration.testing`) as the alert channel, also as a failing one.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlchaos_orchestration.errors import MlchaosError


@dataclass(frozen=True)
class ReceivedRequest:
    """One POST seen by :class:`WebhookReceiver`; ``json`` is None if the body is not JSON."""

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received_at: float  # time.time() when the body was read


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverHTTPServer

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        receiver = self.server.receiver
        receiver._record(
            ReceivedRequest(self.path, dict(self.headers.items()), body, parsed, time.time())
        )
        self.send_response(receiver.status_code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(receiver.response_body)))
        self.end_headers()
        self.wfile.write(receiver.response_body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence per-request logging."""


class _ReceiverHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    """A real HTTP endpoint on 127.0.0.1 recording POSTed bodies (a Slack-style alert sink).

    Set :attr:`status_code` / :attr:`response_body` to simulate a failing endpoint.
    """

    def __init__(self, status_code: int = 200, response_body: bytes = b"ok"):
        self.status_code = status_code
        self.response_body = response_body
        self._requests: list[ReceivedRequest] = []
        self._cond = threading.Condition()
        self._server: _ReceiverHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise MlchaosError("WebhookReceiver is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._cond:
            return list(self._requests)

    def _record(self, request: ReceivedRequest) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Block until at least ``n`` requests arrived; raise TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._requests) >= n, timeout=timeout):
                raise TimeoutError(
                    f"webhook got {len(self._requests)} request(s), expected {n} in {timeout}s"
                )
            return list(self._requests)

    def start(self) -> WebhookReceiver:
        self._server = _ReceiverHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # fast shutdown()
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
