"""Hooks that follow the ledger: installed from active leases, removed as soon as a lease ends.

A reader process (an Airflow task, a Dagster step, a plain pipeline) installs the hooks of its
run's active leases with :class:`LedgerHooks`. A watcher thread re-reads the ledger every
``interval_s`` and removes the hook of every lease that was restored, aborted or expired - so
``mlchaos abort`` from any other process stops connector faults here within about one interval.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from mlchaos_orchestration.interceptors.registry import Handle, install

log = logging.getLogger(__name__)


class LedgerHooks:
    """The hooks of active leases (optionally of one run / scope), kept in sync with the ledger."""

    def __init__(
        self,
        ledger: Any,
        *,
        run_id: str | None = None,
        scope: str | None = None,
        interval_s: float = 0.5,
    ):
        self.ledger = ledger
        self.run_id = run_id
        self.scope = scope
        self.interval_s = interval_s
        self.handles: dict[str, Handle] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def active_specs(self) -> dict[str, dict[str, Any]]:
        """lease id -> hook spec of the leases that should be in effect now."""
        now = time.time()
        return {
            lease.id: lease.hook
            for lease in self.ledger.live_leases(run_id=self.run_id)
            if lease.state == "active"
            and lease.hook
            and not lease.due(now)
            and (self.scope is None or lease.scope in (None, self.scope))
        }

    def refresh(self) -> None:
        """Install hooks of new active leases; remove those whose lease ended."""
        wanted = self.active_specs()
        with self._lock:
            for lease_id in [k for k in self.handles if k not in wanted]:
                self.handles.pop(lease_id).remove()
                log.info("mlchaos: lease %s ended: its fault hook is removed", lease_id)
            for lease_id, spec in wanted.items():
                if lease_id not in self.handles:
                    self.handles[lease_id] = install(spec, key=f"lease:{lease_id}")

    def start(self) -> LedgerHooks:
        """Install now and watch the ledger in a daemon thread until :meth:`close`."""
        self.refresh()
        self._thread = threading.Thread(target=self._watch, name="mlchaos-lease-watch", daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a ledger hiccup must not kill the reader
                log.warning("mlchaos: could not re-read fault leases", exc_info=True)

    def close(self) -> None:
        """Stop watching and remove every hook installed here."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            for handle in self.handles.values():
                handle.remove()
            self.handles.clear()

    def __enter__(self) -> LedgerHooks:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
