"""A small circuit breaker: after ``failure_threshold`` consecutive failures the circuit opens and
calls fail fast for ``reset_timeout_s``; then one trial call (half-open) closes or re-opens it."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_CODES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class BreakerOpen(Exception):
    """The circuit is open: the call was not attempted."""


class CircuitBreaker:
    """Thread-safe breaker around any callable; ``clock`` is injectable for tests."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_timeout_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout_s > 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False
        self.opened = 0  # times the circuit opened (for metrics and the post-mortem)

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout_s:
            return HALF_OPEN
        return OPEN

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` through the breaker; raise :class:`BreakerOpen` without calling it when
        the circuit is open (or a half-open trial is already running)."""
        self._enter()
        try:
            result = fn()
        except Exception:
            self._record(ok=False)
            raise
        self._record(ok=True)
        return result

    async def acall(self, fn: Callable[[], Awaitable[T]]) -> T:
        """:meth:`call` for a coroutine function (same states, same counts)."""
        self._enter()
        try:
            result = await fn()
        except Exception:
            self._record(ok=False)
            raise
        self._record(ok=True)
        return result

    def _enter(self) -> None:
        with self._lock:
            state = self._state()
            if state == OPEN or (state == HALF_OPEN and self._trial):
                raise BreakerOpen(f"circuit open ({self._failures} consecutive failures)")
            self._trial = state == HALF_OPEN

    def _record(self, *, ok: bool) -> None:
        with self._lock:
            self._trial = False
            if ok:
                self._failures = 0
                self._opened_at = None
                return
            self._failures += 1
            if self._opened_at is not None or self._failures >= self.failure_threshold:
                if self._opened_at is None or self._state() == HALF_OPEN:
                    self.opened += 1
                self._opened_at = self._clock()
