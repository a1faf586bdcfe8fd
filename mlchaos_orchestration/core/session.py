"""Applying environment faults under leases, and restoring them: normally, on error, on abort,
and on the next start after a crash.

Order of an apply (each step recorded in the ledger before the next starts):
1. guards (environment, allowlist) - refuse before anything is touched;
2. lease on every touched target (refused if another live lease overlaps);
3. backup of every target the fault changes (pending -> complete, with a checksum);
4. lease ``active`` - only now may the fault change data; then ``fault_applied``.
Restore trusts only the backups: whatever state the target is in (half-faulted, missing), it is
made byte-identical to the backup and the checksum is verified before the backup is discarded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlchaos_orchestration.core.ledger import Lease, Ledger
from mlchaos_orchestration.core.safety import (
    SafetySpec,
    check_environment,
    check_targets,
    effective_allowlist,
)
from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import MlchaosError, RestoreError
from mlchaos_orchestration.faults.base import ApplyContext, EnvironmentFault
from mlchaos_orchestration.settings import Settings, get_settings
from mlchaos_orchestration.stores.base import get_store

log = logging.getLogger(__name__)


@dataclass
class AppliedFault:
    """A fault that is in effect, with its lease."""

    lease: Lease
    fault: EnvironmentFault
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RestoreOutcome:
    """What a restore did for one lease."""

    lease_id: str
    fault: str
    restored: bool
    checksums: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0


def plan(fault: EnvironmentFault, ctx: ApplyContext) -> list[str]:
    """Human-readable list of what applying ``fault`` would touch (for ``--dry-run``)."""
    touched = fault.touched_targets(ctx)
    backed = {t.lock_key() for t in fault.backup_targets(ctx)}
    lines = []
    for t in touched:
        how = "backed up, then changed" if t.lock_key() in backed else "reached through hooks"
        lines.append(f"{fault.name}: {t.describe()} ({how})")
    return lines


def guard(
    fault: EnvironmentFault, ctx: ApplyContext, safety: SafetySpec, settings: Settings
) -> None:
    """Raise SafetyError if the fault may not act here; touches nothing."""
    check_environment(settings, safety)
    check_targets(fault.touched_targets(ctx), effective_allowlist(settings, safety))


def apply_fault(
    ledger: Ledger,
    fault: EnvironmentFault,
    ctx: ApplyContext,
    *,
    run_id: str,
    safety: SafetySpec,
    settings: Settings | None = None,
    scope: str | None = None,
    source: str = "",
) -> AppliedFault:
    """Apply ``fault`` under a lease with backups; on any failure, restore what was touched."""
    settings = settings or get_settings()
    guard(fault, ctx, safety, settings)
    hook = fault.hook(ctx)
    lease = ledger.acquire_lease(
        run_id=run_id,
        fault=fault.name,
        targets=fault.touched_targets(ctx),
        spec=fault.spec(),
        ttl_s=safety.ttl_s,
        hook=hook,
        scope=scope,
        restore_after_s=fault.restore_after_s(),
    )
    # the first backup's id is the lease id, so faults can derive names (e.g. a SQL stash table)
    ctx.extra["backup_id"] = lease.id
    ctx.extra["lease_id"] = lease.id
    try:
        for index, target in enumerate(fault.backup_targets(ctx)):
            store = get_store(target, settings)
            before = store.checksum(target)
            backup_id = ledger.begin_backup(
                lease.id, target, lease.id if index == 0 else f"{lease.id}x{index}"
            )
            ref = store.backup(target, backup_id, **fault.backup_options(target))
            ctx.extra.setdefault("backup_refs", {})[target.lock_key()] = ref
            ledger.complete_backup(backup_id, ref, before)
        if not ledger.set_lease_state(lease.id, "active", expect=("backing_up",)):
            raise MlchaosError(f"lease {lease.id} was aborted before the fault was applied")
        details = fault.apply(ctx) or {}
    except BaseException as exc:
        restore_lease(ledger, lease.id, settings=settings, reason="apply failed")
        ledger.record(
            run_id, "error", source=source or fault.name, stage="apply", message=_one_line(exc)
        )
        raise
    try:
        evidence = content_evidence(fault.backup_targets(ctx), settings)
    except Exception as exc:  # noqa: BLE001 - evidence is best effort, the fault is in place
        log.warning("mlchaos: could not fingerprint %s: %s", fault.name, _one_line(exc))
        evidence = {"fingerprint_error": _one_line(exc)}
    ledger.record(
        run_id,
        "fault_applied",
        source=source or fault.name,
        fault=fault.name,
        lease_id=lease.id,
        params=fault.spec(),
        seed=ctx.seed,
        backed_up=len(ledger.backups(lease.id)),
        targets=[t.describe() for t in lease.targets],
        details=details,
        hook=hook is not None,
        **evidence,
        **_rows_changed(fault, details),
    )
    if fault.restore_after_s() is not None:  # `late`: restored on time by this process too
        from mlchaos_orchestration.faults.environment import timers

        timers.arm(ledger, lease.id, settings=settings)
    return AppliedFault(lease=ledger.get_lease(lease.id) or lease, fault=fault, details=details)


def _rows_changed(fault: EnvironmentFault, details: dict[str, Any]) -> dict[str, int]:
    """``{"rows_changed": n}`` for data faults on stored data (``StoredDataFault``)."""
    if getattr(fault, "inner", None) is not None and "rows_changed" in details:
        return {"rows_changed": int(details["rows_changed"])}
    return {}


# ------------------------------------------------------------------------------ content evidence
ABSENT = "absent"


def content_fingerprint(target: Target, settings: Settings | None = None) -> str:
    """sha256 of the stored content of ``target`` (the store's own checksum, canonicalised), or
    ``"absent"`` when nothing is there. Reads the whole content: the cost of a checksum."""
    checksum = get_store(target, settings).checksum(target)
    if not checksum:
        return ABSENT
    canonical = json.dumps(checksum, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def content_signature(target: Target, settings: Settings | None = None) -> str | None:
    """A cheap signature that changes whenever the content is rewritten, without reading it:
    (size, mtime, inode) of every file of a local target, (ETag, size) of every object of an
    S3 target. ``None`` where no cheap signature exists (SQL tables: the checksum decides)."""
    if target.kind == "local":
        return _local_signature(Path(target.location))
    if target.kind == "s3":
        return _s3_signature(target, settings)
    return None


def _local_signature(path: Path) -> str:
    if not os.path.lexists(path):
        return ABSENT
    parts: list[str] = []
    paths = [path]
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path, followlinks=False):
            dirs.sort()
            paths += [Path(root) / n for n in sorted(dirs + files)]
    for item in paths:
        st = item.lstat()
        parts.append(f"{item.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _s3_signature(target: Target, settings: Settings | None) -> str:
    from mlchaos_orchestration.stores.s3 import BACKUP_PREFIX

    store: Any = get_store(target, settings)
    client = store.client
    prefix = target.key
    parts: list[str] = []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix)
    for page in pages:
        for obj in page.get("Contents", ()):
            key = obj["Key"]
            if BACKUP_PREFIX in key:
                continue
            if prefix and not prefix.endswith("/") and key != prefix:
                continue
            parts.append(f"{key}:{obj.get('ETag')}:{obj.get('Size')}")
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest() if parts else ABSENT


def content_evidence(targets: list[Target], settings: Settings | None = None) -> dict[str, Any]:
    """``{"fingerprint": {target: sha256 | "absent"}, "signature": {target: cheap signature}}``
    of stored targets right after a fault was applied (empty for hook-only faults)."""
    if not targets:
        return {}
    fingerprints: dict[str, str] = {}
    signatures: dict[str, str | None] = {}
    for target in targets:
        name = target.describe()
        fingerprints[name] = content_fingerprint(target, settings)
        signatures[name] = content_signature(target, settings)
    return {"fingerprint": fingerprints, "signature": signatures}


def restore_lease(
    ledger: Ledger, lease_id: str, *, settings: Settings | None = None, reason: str = "end"
) -> RestoreOutcome:
    """Restore every backup of a lease, verify checksums, then release it. Safe to repeat."""
    settings = settings or get_settings()
    start = time.monotonic()
    lease = ledger.get_lease(lease_id)
    if lease is None:
        raise MlchaosError(f"no lease {lease_id!r}")
    if lease.state in ("restored",):
        return RestoreOutcome(lease_id, lease.fault, True)
    if not ledger.claim_restore(lease_id, dead_holder=dead_holder(lease.holder)):
        return _wait_for_other_restorer(ledger, lease_id, start, settings)
    proofs: list[dict[str, Any]] = []
    try:
        for backup in ledger.backups(lease_id):
            store = get_store(backup.target, settings)
            if backup.state != "complete" or backup.ref is None:
                # crashed mid-backup: the target was never changed; drop the partial copy
                _discard_partial(store, backup)
                ledger.set_backup_state(backup.id, "discarded")
                continue
            store.restore(backup.target, backup.ref)
            after = store.checksum(backup.target)
            if after != backup.checksum:
                raise RestoreError(
                    f"restore of {backup.target.describe()} did not match its backup"
                )
            proofs.append(
                {
                    "target": backup.target.describe(),
                    "before": backup.checksum,
                    "after": after,
                    "identical": True,
                }
            )
            store.discard(backup.ref)
            ledger.set_backup_state(backup.id, "discarded")
    except Exception as exc:  # noqa: BLE001 - recorded, lease left for the next restore
        ledger.set_lease_state(lease_id, "active", expect=("restoring",), note=_one_line(exc))
        ledger.record(
            lease.run_id,
            "restore_failed",
            source="mlchaos",
            lease_id=lease_id,
            message=_one_line(exc),
        )
        return RestoreOutcome(
            lease_id, lease.fault, False, proofs, _one_line(exc), time.monotonic() - start
        )
    ledger.set_lease_state(lease_id, "restored", expect=("restoring",), note=reason)
    ledger.record(
        lease.run_id,
        "restored",
        source="mlchaos",
        lease_id=lease_id,
        fault=lease.fault,
        reason=reason,
        proofs=proofs,
    )
    return RestoreOutcome(lease_id, lease.fault, True, proofs, None, time.monotonic() - start)


def _wait_for_other_restorer(
    ledger: Ledger,
    lease_id: str,
    start: float,
    settings: Settings | None = None,
    timeout_s: float = 30.0,
) -> RestoreOutcome:
    while time.monotonic() - start < timeout_s:
        lease = ledger.get_lease(lease_id)
        if lease is None or lease.state in ("restored", "failed"):
            ok = lease is not None and lease.state == "restored"
            return RestoreOutcome(
                lease_id, lease.fault if lease else "?", ok, duration_s=time.monotonic() - start
            )
        if ledger.claim_restore(lease_id, dead_holder=dead_holder(lease.holder)):
            return restore_lease(ledger, lease_id, settings=settings)
        time.sleep(0.05)
    return RestoreOutcome(lease_id, "?", False, error="another restorer did not finish in time")


def dead_holder(holder: str) -> str | None:
    """``holder`` (``host:pid``) if it names a process on this host that is gone (or a zombie).

    Lets a restore take over at once from a restorer that was killed, instead of waiting for its
    claim to expire; holders on other hosts are never judged (their claims expire).
    """
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return holder
    except OSError:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return holder if stat.read().rsplit(")", 1)[-1].split()[0] == "Z" else None
    except (OSError, IndexError):
        return None


def _discard_partial(store: Any, backup: Any) -> None:
    discard_partial = getattr(store, "discard_partial", None)
    if discard_partial is not None:
        discard_partial(backup.target, backup.id)


def recover(
    ledger: Ledger | None = None, *, settings: Settings | None = None, now: float | None = None
) -> list[RestoreOutcome]:
    """Restore every live lease that has expired or passed its restore time.

    Called before anything else runs (CLI commands, runner, Airflow listener, Dagster resources).
    """
    ledger = ledger or Ledger()
    now = time.time() if now is None else now
    out = []
    for lease in ledger.live_leases():
        stale_claim = lease.state == "restoring" and (
            (lease.claim_until or 0) < now or dead_holder(lease.holder) is not None
        )
        if lease.due(now) or stale_claim:
            reason = (
                "late fault restored on time"
                if lease.restore_at and now >= lease.restore_at and now < lease.expires_at
                else "lease expired"
            )
            out.append(restore_lease(ledger, lease.id, settings=settings, reason=reason))
    return out


def restore_all(
    ledger: Ledger | None = None,
    *,
    run_id: str | None = None,
    settings: Settings | None = None,
    reason: str = "restore",
) -> list[RestoreOutcome]:
    """Restore every live lease (optionally of one run), expired or not."""
    ledger = ledger or Ledger()
    return [
        restore_lease(ledger, lease.id, settings=settings, reason=reason)
        for lease in ledger.live_leases(run_id=run_id)
    ]


def abort(
    ledger: Ledger | None = None, *, run_id: str | None = None, settings: Settings | None = None
) -> list[RestoreOutcome]:
    """Stop experiments now: flag runs as aborted and restore every live lease.

    Works from any process: everything needed (backup references) is in the ledger, so it does
    not matter whether the process that applied the fault is alive, hung or dead.
    """
    ledger = ledger or Ledger()
    ledger.request_abort(run_id)
    outcomes = restore_all(ledger, run_id=run_id, settings=settings, reason="abort")
    for outcome in outcomes:
        lease = ledger.get_lease(outcome.lease_id)
        if lease is not None:
            ledger.record(lease.run_id, "aborted", source="mlchaos", lease_id=lease.id)
    return outcomes


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
