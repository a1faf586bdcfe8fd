"""Orchestrator-neutral chaos control: what an Airflow operator, a Dagster resource or the plain
runner calls. Every function takes only JSON-able arguments and the ledger, so any worker process
can run any step (nothing lives in process memory)."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from mlchaos_orchestration.core.experiment import Experiment, FaultEntry
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.session import (
    AppliedFault,
    apply_fault,
    content_fingerprint,
    content_signature,
    guard,
    plan,
    recover,
    restore_all,
)
from mlchaos_orchestration.core.verdict import compute_verdict
from mlchaos_orchestration.faults.base import ApplyContext, DataFault, EnvironmentFault
from mlchaos_orchestration.settings import Settings, get_settings

log = logging.getLogger(__name__)
READ_ROLES = ("gate", "consumer", "task")


def run_id_for(run_key: str, experiment: str) -> str:
    """Stable ledger run id for an orchestrator run (e.g. Airflow ``dag_run.run_id``)."""
    return hashlib.sha256(f"{experiment}\x00{run_key}".encode()).hexdigest()[:16]


def seed_for(experiment_seed: int, run_key: str) -> int:
    """Per-run seed derived from the experiment seed and the orchestrator run key."""
    digest = hashlib.sha256(f"{experiment_seed}:{run_key}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def begin_run(
    exp: Experiment,
    *,
    run_key: str,
    orchestrator: str,
    pipeline: str,
    ledger: Ledger | None = None,
    suite_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> str:
    """Create (idempotently) the ledger run for an orchestrator run; restore expired leases."""
    ledger = ledger or Ledger()
    recover(ledger)
    run_id = run_id_for(run_key, exp.name)
    existed = ledger.get_run(run_id) is not None
    ledger.start_run(
        exp.name,
        pipeline=pipeline,
        orchestrator=orchestrator,
        control=exp.control,
        seed=exp.seed,
        run_id=run_id,
        suite_id=suite_id,
        meta={"experiment": exp.spec(), "run_key": run_key, **(meta or {})},
    )
    if not existed:
        ledger.record(run_id, "run_started", source=orchestrator)
    return run_id


def as_environment_fault(entry: FaultEntry, target: Any = None) -> EnvironmentFault:
    """The fault to apply to stored data: environment faults as they are, data faults wrapped
    in a :class:`StoredDataFault` on ``target`` (required for data faults)."""
    if isinstance(entry.fault, EnvironmentFault):
        return entry.fault
    from mlchaos_orchestration.errors import SpecError
    from mlchaos_orchestration.faults.environment.stored import StoredDataFault

    if target is None:
        raise SpecError([f"{entry.name}: a data fault on stored data needs a target"])
    assert isinstance(entry.fault, DataFault)
    return StoredDataFault(inner=entry.fault, target=target)


def render_target(target: Any, ds: str | None) -> Any:
    """Fill ``{ds}`` in a target (string or mapping values) with the run date."""
    if target is None or ds is None:
        return target
    if isinstance(target, str):
        return target.replace("{ds}", ds)
    if isinstance(target, dict):
        return {k: render_target(v, ds) for k, v in target.items()}
    return target


def render_fault(fault: EnvironmentFault, ds: str | None) -> EnvironmentFault:
    """Fill ``{ds}`` in an environment fault's ``target`` (templates keep theirs)."""
    target = getattr(fault, "target", None)
    if ds is None or target is None:
        return fault
    return fault.model_copy(update={"target": render_target(target, ds)})


def inject(
    run_id: str,
    exp: Experiment,
    entry: FaultEntry,
    *,
    seed: int,
    ds: str | None = None,
    target: Any = None,
    ledger: Ledger | None = None,
    settings: Settings | None = None,
    source: str = "",
    dry_run: bool = False,
) -> AppliedFault | list[str]:
    """Apply one fault of ``exp`` for run ``run_id`` (or, with ``dry_run``, say what it would
    touch)."""
    settings = settings or get_settings()
    ledger = ledger or Ledger(settings.ledger_url)
    fault = render_fault(as_environment_fault(entry, render_target(target or entry.target, ds)), ds)
    ctx = ApplyContext(seed=seed, ds=ds, run_id=run_id, s3_endpoint_url=settings.s3_endpoint_url)
    if dry_run:
        guard(fault, ctx, exp.safety, settings)
        return plan(fault, ctx)
    return apply_fault(
        ledger, fault, ctx, run_id=run_id, safety=exp.safety, settings=settings, source=source
    )


def record(
    run_id: str, kind: str, *, source: str = "", ledger: Ledger | None = None, **data: Any
) -> None:
    """Record an event (gate_failed, consumer_started, alert_sent, ...) for a run."""
    (ledger or Ledger()).record(run_id, kind, source=source, **data)


def observe_read(
    run_id: str,
    task: str,
    role: str,
    ledger: Ledger | None = None,
    *,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Record what ``task`` is about to read: one ``target_read`` event per stored target of each
    active lease of the run, with ``matches`` = the content is still the faulted content.

    Called when the gate and the consumer START, before user code reads. Cheap: a stat of each
    file (local) or one listing (S3) is compared with the signature taken at apply time; only
    when it differs (or for SQL tables, which have no cheap signature) is the content hashed.
    Never raises: a target that cannot be read is recorded with ``matches: null`` and the error.
    """
    if role not in READ_ROLES:
        raise ValueError(f"role must be one of {READ_ROLES}, got {role!r}")
    settings = settings or get_settings()
    ledger = ledger or Ledger(settings.ledger_url)
    leases = [lease for lease in ledger.live_leases(run_id=run_id) if lease.state == "active"]
    if not leases:
        return []
    applied = {
        e.data.get("lease_id"): e.data for e in ledger.events(run_id) if e.kind == "fault_applied"
    }
    out: list[dict[str, Any]] = []
    for lease in leases:
        data = applied.get(lease.id) or {}
        fingerprints = data.get("fingerprint") or {}
        signatures = data.get("signature") or {}
        for target in lease.targets:
            name = target.describe()
            if name not in fingerprints:
                continue
            read = _read_one(target, fingerprints[name], signatures.get(name), settings)
            read.update(task=task, role=role, lease_id=lease.id, target=name)
            ledger.record(run_id, "target_read", source=task, **read)
            out.append(read)
    return out


def _read_one(
    target: Any, faulted: str, signature: str | None, settings: Settings
) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        now = content_signature(target, settings)
        if now is not None and signature is not None and now == signature:
            fingerprint, how = faulted, "signature"
        else:
            fingerprint, how = content_fingerprint(target, settings), "checksum"
        result: dict[str, Any] = {
            "fingerprint": fingerprint,
            "matches": fingerprint == faulted,
            "checked_by": how,
        }
    except Exception as exc:  # noqa: BLE001 - observing must never break the task
        log.warning("mlchaos: could not observe %s: %s", target.describe(), exc)
        result = {"fingerprint": None, "matches": None, "error": f"{type(exc).__name__}: {exc}"}
    result["check_s"] = round(time.perf_counter() - start, 6)
    return result


def finish(
    run_id: str,
    *,
    ledger: Ledger | None = None,
    settings: Settings | None = None,
    alert_deadline_s: float | None = None,
) -> dict[str, Any]:
    """Restore every fault of the run, compute and store its verdict, close the run."""
    settings = settings or get_settings()
    ledger = ledger or Ledger(settings.ledger_url)
    restore_all(ledger, run_id=run_id, settings=settings, reason="run ended")
    run = ledger.get_run(run_id) or {}
    exp = (run.get("meta") or {}).get("experiment") or {}
    deadline = alert_deadline_s
    if deadline is None:
        deadline = float((exp.get("safety") or {}).get("alert_deadline_s", 300.0))
    verdict = compute_verdict(
        ledger.events(run_id),
        control=bool(run.get("control")),
        alert_deadline_s=deadline,
        alert_expected=(exp.get("alert") or {}).get("expected", True) is not False,
    )
    ledger.set_verdict(run_id, verdict)
    ledger.end_run(run_id, "finished")
    return verdict
