"""Admission control for the prediction API: load shedding to a fallback answer.

A pure ASGI middleware in front of the app. It times every ``POST /predict`` from the moment the
request reaches the process to the last byte of the answer (worker-thread queueing included),
and, when the mitigation is on, sheds load: while the oldest prediction in flight has waited
longer than ``shed_after_s``, a new request is answered at once from the fallback path (the
user's cached features or the store's defaults, counted as a fallback with reason ``overload``)
instead of queueing behind the others. A burst the API clears in time is never shed; an
overloaded API answers the excess degraded instead of answering everything late.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

PREDICT_PATH = "/predict"


class AdmissionControl:
    """ASGI middleware: latency of ``/predict`` and, if ``shed_after_s`` is set, shedding."""

    def __init__(self, app: Any, predictor: Any, shed_after_s: float | None) -> None:
        self.app = app
        self.predictor = predictor
        self.shed_after_s = shed_after_s
        self._in_flight: dict[int, float] = {}  # request number -> start; oldest first
        self._numbers = itertools.count()

    def overloaded(self, now: float) -> bool:
        """Whether the oldest prediction in flight has waited longer than ``shed_after_s``."""
        if self.shed_after_s is None or not self._in_flight:
            return False
        return now - next(iter(self._in_flight.values())) > self.shed_after_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT_PATH:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            if self.overloaded(start):
                await self._shed(receive, send)
                return
            number = next(self._numbers)
            self._in_flight[number] = start
            try:
                await self.app(scope, receive, send)
            finally:
                del self._in_flight[number]
        finally:
            self.predictor.metrics.latency.observe(time.perf_counter() - start)

    async def _shed(self, receive: Any, send: Any) -> None:
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            req = json.loads(body)
            answer = self.predictor.shed(
                int(req["user_id"]), float(req.get("amount", 0.0)), int(req.get("hour", 12))
            )
            status, payload = 200, answer
        except (ValueError, KeyError, TypeError):
            status, payload = 422, {"detail": "invalid request"}
        except Exception as exc:  # noqa: BLE001 - PredictionError and anything the scorer raises
            status, payload = getattr(exc, "status", 500), {"detail": getattr(exc, "reason", "")}
        data = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
