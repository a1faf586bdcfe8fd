"""Self-restore timers: a ``late`` outage comes back at ``delay_s`` in the process that applied it.

:func:`arm` starts a daemon timer for a lease that has a ``restore_at`` (set by the session from
``fault.restore_after_s()``); when it fires, the lease is restored through
``session.restore_lease`` (claim, restore, checksum, release: safe against a concurrent end-of-run
restore or a recoverer). The timer is a daemon thread: a process that exits earlier does not wait
for it, and the ledger's ``restore_at`` stays the fallback (``session.recover`` restores a lease
past its restore time, whoever calls it).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.settings import Settings

log = logging.getLogger(__name__)

REASON = "late fault restored on time"

_lock = threading.Lock()
_timers: dict[str, threading.Timer] = {}


def arm(ledger: Ledger, lease_id: str, *, settings: Settings | None = None) -> bool:
    """Restore lease ``lease_id`` at its ``restore_at`` from this process (a daemon timer).

    Returns ``False`` (nothing armed) when the lease is gone, already finished, or has no
    ``restore_at``. Arming the same lease twice keeps the first timer.
    """
    lease = ledger.get_lease(lease_id)
    if lease is None or lease.restore_at is None or lease.state in ("restored", "failed"):
        return False
    delay = max(0.0, lease.restore_at - time.time())
    with _lock:
        if lease_id in _timers:
            return True
        timer = threading.Timer(delay, _fire, args=(ledger, lease_id, settings))
        timer.daemon = True
        timer.name = f"mlchaos-restore-{lease_id}"
        _timers[lease_id] = timer
    timer.start()
    return True


def cancel(lease_id: str) -> bool:
    """Stop the timer of ``lease_id`` (e.g. the run ended and restored it); ``True`` if one ran."""
    with _lock:
        timer = _timers.pop(lease_id, None)
    if timer is None:
        return False
    timer.cancel()
    return True


def pending() -> list[str]:
    """Lease ids with a timer armed in this process."""
    with _lock:
        return sorted(_timers)


def _fire(ledger: Ledger, lease_id: str, settings: Settings | None) -> None:
    from mlchaos_orchestration.core.session import restore_lease

    try:
        lease = ledger.get_lease(lease_id)
        if lease is None or lease.state in ("restored", "failed"):
            return
        outcome = restore_lease(ledger, lease_id, settings=settings, reason=REASON)
        if not outcome.restored:
            log.warning("mlchaos: late restore of lease %s failed: %s", lease_id, outcome.error)
    except Exception as exc:  # noqa: BLE001 - a timer thread must not die loudly; recover retries
        log.warning("mlchaos: late restore of lease %s failed: %s", lease_id, exc)
    finally:
        with _lock:
            _timers.pop(lease_id, None)
