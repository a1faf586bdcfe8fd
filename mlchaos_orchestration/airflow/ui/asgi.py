"""An ASGI app built on its first request, so importing the plugin stays cheap everywhere.

Airflow imports plugins in every task process too; only the API server ever calls the app, so
FastAPI and Airflow's API security modules are imported there, on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LazyASGIApp:
    """Wrap ``factory`` (returning an ASGI app); build the app once, on the first call."""

    def __init__(self, factory: Callable[[], Any]):
        self._factory = factory
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        """The real app (built now if needed)."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def __repr__(self) -> str:
        return f"LazyASGIApp({getattr(self._factory, '__qualname__', self._factory)!r})"
