"""Hooks that follow the ledger: installed from active leases, removed as soon as a lease ends.

A reader process (an Airflow task, a Dagster step, a plain pipeline) installs the hooks of its
run's active leases with :class:`LedgerHooks`. A watcher thread re-reads the ledger every
``interval_s`` and removes the hook of every lease that was restored, aborted or expired - so
``mlchaos abort`` from any other process stops connector faults here within about one interval.

Whenever a hook is removed (its lease ended, or :meth:`LedgerHooks.close`), the calls it saw
and failed in this process are written to the ledger as an ``interceptor_stats`` event
``{lease_id, intercepted, failed}`` of the lease's run: the verdict's evidence that a connector
fault reached the pipeline (0 intercepted calls = it never did).
"""

from __future__ import annotations

import logging
import os
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
        self.runs: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def active_specs(self) -> dict[str, dict[str, Any]]:
        """lease id -> hook spec of the leases that should be in effect now."""
        now = time.time()
        out: dict[str, dict[str, Any]] = {}
        for lease in self.ledger.live_leases(run_id=self.run_id):
            if (
                lease.state == "active"
                and lease.hook
                and not lease.due(now)
                and (self.scope is None or lease.scope in (None, self.scope))
            ):
                out[lease.id] = lease.hook
                self.runs[lease.id] = lease.run_id
        return out

    def refresh(self) -> None:
        """Install hooks of new active leases; remove those whose lease ended."""
        wanted = self.active_specs()
        with self._lock:
            if self._stop.is_set():  # closed while the ledger was read: install nothing more
                return
            for lease_id in [k for k in self.handles if k not in wanted]:
                self._remove(lease_id)
                log.info("mlchaos: lease %s ended: its fault hook is removed", lease_id)
            for lease_id, spec in wanted.items():
                if lease_id not in self.handles:
                    self.handles[lease_id] = install(spec, key=f"lease:{lease_id}")

    def _remove(self, lease_id: str) -> None:
        """Remove one hook and flush what it saw (caller holds ``_lock``)."""
        handle = self.handles.pop(lease_id)
        handle.remove()
        self.flush(lease_id, handle)

    def flush(self, lease_id: str, handle: Handle) -> dict[str, int] | None:
        """Write the calls ``handle`` intercepted / failed since its last flush to the ledger."""
        stats = handle.take_stats()
        run_id = self.runs.get(lease_id) or self.run_id
        if run_id is None:
            return None
        try:
            self.ledger.record(
                run_id,
                "interceptor_stats",
                source=self.scope or "interceptor",
                lease_id=lease_id,
                intercepted=int(stats["calls"]),
                failed=int(stats["failures"]),
                hook=str(handle.spec.get("kind")),
                pid=os.getpid(),
            )
        except Exception:  # noqa: BLE001 - a ledger hiccup must not break the reader
            log.warning("mlchaos: could not record interceptor stats", exc_info=True)
        return stats

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
            for lease_id in list(self.handles):
                self._remove(lease_id)

    def __enter__(self) -> LedgerHooks:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
