"""Faults applied to a frame as it is loaded (in memory; nothing stored changes, nothing to
restore). Data faults use the fault's own vectorised ``apply``; ``upstream_outage`` and
``stale_partition_replay`` entries that name an ``at`` act on the load instead of stored data."""

from __future__ import annotations

from typing import Any

from mlchaos_orchestration.core.experiment import FaultEntry

#: environment faults that act on the load when their entry names an ``at``
ON_LOAD = frozenset({"upstream_outage", "stale_partition_replay"})


def acts_on_load(entry: FaultEntry) -> bool:
    """Whether the IO manager applies ``entry`` in memory as data is loaded: data faults and
    outage / stale replay entries that name an ``at``. Everything else (stored-data faults, data
    faults with only a ``target``, connector failures) is injected before the run."""
    if not entry.at:
        return False
    return entry.fault.family == "data" or entry.fault.name in ON_LOAD


class LoadOutage(FileNotFoundError):
    """Raised by a load under an ``upstream_outage`` (missing/late/error): the class a file-based
    IO manager raises for a missing object, so retry/fallback code reacts as in a real outage."""


def apply_data_fault(entry: FaultEntry, frame: Any, seed: int) -> tuple[Any, dict[str, Any]]:
    """Faulted copy of ``frame`` and the event data (what changed)."""
    result = entry.fault.apply(frame, seed)  # type: ignore[attr-defined]
    return result.frame, result.summary()


def apply_outage(entry: FaultEntry, frame: Any, where: str) -> tuple[Any, dict[str, Any]]:
    """What a load returns under an in-memory ``upstream_outage`` (or raises for missing)."""
    fault = entry.fault
    mode = getattr(fault, "mode", "missing")
    if mode in ("missing", "late", "error"):
        raise LoadOutage(f"mlchaos upstream_outage ({mode}): {where} is not available")
    keep = 0 if mode == "empty" else int(len(frame) * float(getattr(fault, "keep_fraction", 0.5)))
    return frame.iloc[:keep].copy(), {"mode": mode, "rows_kept": keep, "rows_before": len(frame)}


def shifted_partition(partition_key: str, lag_days: int) -> str:
    """The daily partition key ``lag_days`` before ``partition_key`` (``YYYY-MM-DD`` prefix)."""
    import datetime as dt

    day = dt.date.fromisoformat(partition_key[:10]) - dt.timedelta(days=lag_days)
    return day.isoformat() + partition_key[10:]
