"""Interceptors: make an environment fault take effect inside a reader's process.

A fault whose effect lives in another process (a connector failure rate, S3 throttling) is
described by a JSON *spec* that travels through the ledger; each task or step process installs it
with :func:`install` (SQLAlchemy engine events in :mod:`.sql`, botocore event hooks in :mod:`.s3`)
and :class:`~.ledger_sync.LedgerHooks` removes it as soon as the fault's lease ends.
"""

from __future__ import annotations

from mlchaos_orchestration.interceptors.registry import (
    KINDS,
    MAX_LATENCY_MS,
    Handle,
    Injector,
    active,
    attach,
    install,
    installed,
    remove_all,
    spec_key,
    validate,
)

__all__ = [
    "KINDS",
    "MAX_LATENCY_MS",
    "Handle",
    "Injector",
    "active",
    "attach",
    "install",
    "installed",
    "remove_all",
    "spec_key",
    "validate",
]
