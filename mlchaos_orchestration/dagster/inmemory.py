"""Faults applied to a frame as it is loaded (in memory; nothing stored changes, nothing to
restore). Data faults use the fault's own vectorised ``apply``; ``upstream_outage`` and
``stale_partition_replay`` entries that name an ``at`` act on the load instead of stored data.

An in-memory outage that makes the data unavailable (``missing`` / ``late`` / ``error``) raises
what the real client would have raised for that target, so the user's retry / fallback code
reacts as in a real outage:

* ``s3://`` targets: ``botocore.exceptions.ClientError`` (``NoSuchKey`` 404 for missing / late,
  the fault's ``error_code`` for error - ``InternalError`` 500 by default);
* SQL targets: ``sqlalchemy.exc.OperationalError`` wrapping the driver's own
  ``OperationalError`` (as when the table is gone or the server drops the connection);
* local files: what ``open()`` raises - ``FileNotFoundError`` (ENOENT) for missing / late,
  ``OSError`` (EIO) for error.
"""

from __future__ import annotations

import errno
from typing import Any

from mlchaos_orchestration.core.experiment import FaultEntry

#: environment faults that act on the load when their entry names an ``at``
ON_LOAD = frozenset({"upstream_outage", "stale_partition_replay"})


def acts_on_load(entry: FaultEntry) -> bool:
    """Whether the IO manager applies ``entry`` in memory as data is loaded: data faults that
    name an ``at`` and no ``target``, and outage / stale replay entries that name an ``at``.

    A data fault with a ``target`` changes STORED data; its ``at`` says when (see
    :mod:`.compute`). Everything else (stored-data faults, connector failures) is injected by
    the runner or the compute wrapper."""
    if not entry.at:
        return False
    if entry.fault.family == "data":
        return entry.target is None
    return entry.fault.name in ON_LOAD


class LoadOutage(FileNotFoundError):
    """A local-file outage (missing / late): what ``open()`` raises for a missing file."""


class LoadError(OSError):
    """A local-file outage (error): what ``open()`` raises for an unreadable file (EIO)."""


def apply_data_fault(entry: FaultEntry, frame: Any, seed: int) -> tuple[Any, dict[str, Any]]:
    """Faulted copy of ``frame`` and the event data (what changed)."""
    result = entry.fault.apply(frame, seed)  # type: ignore[attr-defined]
    return result.frame, result.summary()


def apply_outage(
    entry: FaultEntry, frame: Any, where: str, ds: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """What a load returns under an in-memory ``upstream_outage`` (raises for missing / late /
    error: see :func:`outage_error`)."""
    fault = entry.fault
    mode = getattr(fault, "mode", "missing")
    if mode in ("missing", "late", "error"):
        raise outage_error(entry, where, ds)
    keep = 0 if mode == "empty" else int(len(frame) * float(getattr(fault, "keep_fraction", 0.5)))
    return frame.iloc[:keep].copy(), {"mode": mode, "rows_kept": keep, "rows_before": len(frame)}


def outage_error(entry: FaultEntry, where: str, ds: str | None = None) -> Exception:
    """The exception the real client raises when ``entry``'s target is unavailable."""
    from mlchaos_orchestration.core.control import render_target
    from mlchaos_orchestration.core.targets import Target

    fault = entry.fault
    mode = str(getattr(fault, "mode", "missing"))
    raw = render_target(getattr(fault, "target", None) or entry.target, ds)
    text = f"mlchaos upstream_outage ({mode}): {where} is not available"
    try:
        target = Target.parse(raw) if raw is not None else None
    except Exception:  # noqa: BLE001 - an unparsable target: behave as a local file
        target = None
    if target is not None and target.kind == "s3":
        return _s3_error(mode, str(getattr(fault, "error_code", "InternalError")), target, text)
    if target is not None and target.kind == "sql":
        return _sql_error(mode, target, text)
    path = target.location if target is not None else where
    if mode == "error":
        return LoadError(errno.EIO, f"Input/output error ({text})", path)
    return LoadOutage(errno.ENOENT, f"No such file or directory ({text})", path)


def _s3_error(mode: str, code: str, target: Any, text: str) -> Exception:
    from botocore.exceptions import ClientError

    from mlchaos_orchestration.faults.environment.outage import S3_ERROR_STATUS

    if mode != "error":
        code = "NoSuchKey"
    status = S3_ERROR_STATUS.get(code, 500)
    return ClientError(
        {
            "Error": {"Code": code, "Message": text, "Key": getattr(target, "key", "")},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetObject",
    )


def _sql_error(mode: str, target: Any, text: str) -> Exception:
    import sqlalchemy as sa

    table = target.table or "?"
    detail = (
        f"server closed the connection unexpectedly ({text})"
        if mode == "error"
        else f"no such table: {table} ({text})"
    )
    try:
        dbapi = sa.engine.make_url(target.connect_url()).get_dialect().import_dbapi()
        orig: Exception = dbapi.OperationalError(detail)
    except Exception:  # noqa: BLE001 - driver not installed: still the SQLAlchemy class
        orig = Exception(detail)
    return sa.exc.OperationalError(f"SELECT * FROM {table}", {}, orig)


def shifted_partition(partition_key: str, lag_days: int) -> str:
    """The daily partition key ``lag_days`` before ``partition_key`` (``YYYY-MM-DD`` prefix)."""
    import datetime as dt

    day = dt.date.fromisoformat(partition_key[:10]) - dt.timedelta(days=lag_days)
    return day.isoformat() + partition_key[10:]
