"""Airflow listener (registered by :class:`~mlchaos_orchestration.airflow.plugin.MlchaosPlugin`).

It runs inside each task's own process, for chaos runs only (``mlchaos`` in ``dag_run.conf``):

* task start: restore expired leases (``session.recover``); record what the task is about to
  read (``control.observe_read``: ``target_read``, role gate / consumer / task; for local files
  and SQLite written only once the task is seen opening a target, see :mod:`.reads`; other
  tasks than the gate and the consumer only then, with ``upstream_of``), then
  ``consumer_started`` for the consumer; install the in-process hooks (connector faults) of the
  run's active leases whose scope is this task or unset - removed again when the task ends
  (``dag.test()`` runs every task in one process); wrap the task's own failure callbacks
  (functions and notifiers, e.g. ``SlackWebhookNotifier``, ``SmtpNotifier``) so their outcome is
  recorded: ``alert_sent`` when one returned, ``alert_failed`` with the one-line error when it
  raised (re-raised unchanged, so Airflow behaves exactly as before);
* task end: ``gate_passed`` for the gate; a failed attempt that will be retried is
  ``task_retry`` (never a halt); a FINAL failure is ``gate_failed`` (the gate ran its checks and
  found violations: ``GateFailed``, an AssertionError or a ``...Check...Failed``-style exception
  in the chain), ``gate_crashed`` (any other gate failure) or ``task_failed`` (other tasks).

It never raises into the task: problems are logged and recorded as ``error`` events.

Not observed: DAG-level ``on_failure_callback``s run in the DAG processor (or at the end of
``dag.test()``), after restore has computed the verdict, so they cannot count for it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
_HANDLES: dict[tuple[str, ...], list[Any]] = {}
_READS: Any = None  # core.reads.PendingReads, made on first use (keeps imports light)


def _key(ti: Any) -> tuple[str, ...]:
    return (str(ti.dag_id), str(ti.run_id), str(ti.task_id), str(getattr(ti, "map_index", -1)))


def _chaos(ti: Any) -> tuple[Any, Any] | None:
    """(chaos run, task) for a task of a chaos run; None otherwise (or outside a task process)."""
    if not hasattr(ti, "get_template_context"):
        return None
    from mlchaos_orchestration.airflow.context import chaos_run

    context = ti.get_template_context()
    run = chaos_run(context)
    return (run, context.get("task")) if run is not None else None


def _is_chaos_task(task: Any, task_id: str) -> bool:
    from mlchaos_orchestration.airflow.runtime import is_chaos_task_id

    return is_chaos_task_id(task_id) or hasattr(task, "mlchaos_defaults")


def _guarded(name: str, ti: Any, body: Any) -> None:
    run = None
    try:
        found = _chaos(ti)
        if found is not None and not _is_chaos_task(found[1], str(ti.task_id)):
            run = found[0]
            body(run, ti, found[1])
    except Exception as exc:  # noqa: BLE001 - a listener must never break the task
        log.warning("mlchaos listener (%s) failed for %s: %s", name, ti.task_id, exc)
        if run is not None:  # the experiment's outcome is unreliable: say so in the verdict
            _record_error(run.run_id, str(ti.task_id), name, exc)


def _record_error(run_id: str, task_id: str, stage: str, exc: Exception) -> None:
    try:
        from mlchaos_orchestration.core.control import record

        record(run_id, "error", source=task_id, stage=f"listener.{stage}", message=_one_line(exc))
    except Exception as again:  # noqa: BLE001 - the ledger itself is unreachable
        log.warning("mlchaos listener could not record the error: %s", again)


def _is_gate(run: Any, task: Any, task_id: str) -> bool:
    return task_id == run.gate or (run.gate is None and getattr(task, "is_mlchaos_gate", False))


def _started(run: Any, ti: Any, task: Any) -> None:
    from mlchaos_orchestration.core import control
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.session import recover
    from mlchaos_orchestration.interceptors.ledger_sync import LedgerHooks

    task_id = str(ti.task_id)
    ledger = Ledger()
    recover(ledger)
    _observe_alerts(getattr(ti, "task", None) or task)
    role = "gate" if _is_gate(run, task, task_id) else "consumer" if task_id == run.consumer else ""
    try:  # before the hooks: our own look at the targets must not go through a fault's hook
        _observe_read(run, ti, task, role or "task", ledger)
    except Exception as exc:  # noqa: BLE001 - say so, but still install the faults' hooks
        _record_error(run.run_id, task_id, "observe_read", exc)
    if task_id == run.consumer:
        control.record(run.run_id, "consumer_started", source=task_id, ledger=ledger)
    watch = LedgerHooks(ledger, run_id=run.run_id, scope=task_id)
    if watch.active_specs():
        watch.start()  # removes each hook as soon as its lease ends (restore, abort, expiry)
        with _LOCK:
            _HANDLES.setdefault(_key(ti), []).append(watch)
        log.info("mlchaos: %d fault hook(s) active in task %s", len(watch.handles), task_id)


def _pending() -> Any:
    global _READS
    if _READS is None:
        from mlchaos_orchestration.core.reads import PendingReads

        _READS = PendingReads()
    return _READS


def _observe_read(run: Any, ti: Any, task: Any, role: str, ledger: Any) -> None:
    """``control.observe_read`` at task start; for local / SQLite targets its records are kept
    until the task is seen reading a target (:class:`~mlchaos_orchestration.core.reads.
    PendingReads`), so a target no task reads is not counted as read. Tasks other than the gate
    and the consumer (role ``task``) carry ``upstream_of``: the gate / consumer downstream of
    them (what they read flows there)."""
    downstream = set(task.get_flat_relative_ids(upstream=False)) if task is not None else set()
    _pending().begin(
        _key(ti),
        run_id=run.run_id,
        task=str(ti.task_id),
        role=role,
        ledger=ledger,
        upstream_of=downstream & {run.gate, run.consumer} - {None},
    )


def _flush_reads(ti: Any) -> None:
    """Task end: write the start-time ``target_read`` records if the task read a target."""
    if _READS is None:
        return
    try:
        if _READS.end(_key(ti)) is False:
            log.info("mlchaos: %s never read the faulted target(s): no read recorded", ti.task_id)
    except Exception as exc:  # noqa: BLE001 - a listener must never break the task
        log.warning("mlchaos: could not record the reads of %s: %s", ti.task_id, exc)


def _remove_hooks(ti: Any) -> None:
    with _LOCK:
        watches = _HANDLES.pop(_key(ti), [])
    for watch in reversed(watches):
        watch.close()


# ------------------------------------------------------------------------------ user alerts
class ObservedCallback:
    """A user's failure callback (function or notifier) whose outcome is recorded on chaos runs:
    ``alert_sent`` (delivered) when it returned, ``alert_failed`` when it raised - the exception
    is re-raised unchanged. Our own :class:`MlchaosWebhookNotifier` records itself."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.channel = channel_of(inner)

    def __call__(self, context: Any) -> Any:
        try:
            result = self.inner(context)
        except BaseException as exc:
            _record_alert(context, self.channel, False, _one_line(exc))
            raise
        _record_alert(context, self.channel, True, "returned")
        return result

    def __repr__(self) -> str:
        return f"ObservedCallback({self.inner!r})"


def channel_of(callback: Any) -> str:
    """Who alerts: the notifier class name, else ``callback:<qualname>``."""
    from airflow.sdk import BaseNotifier

    if isinstance(callback, BaseNotifier):
        return type(callback).__name__
    name = getattr(callback, "__qualname__", None) or type(callback).__qualname__
    return f"callback:{name}"


def _observe_alerts(task: Any) -> None:
    """Wrap ``task.on_failure_callback`` (in this task process only, on a chaos run)."""
    if task is None:
        return
    from mlchaos_orchestration.airflow.notifier import MlchaosWebhookNotifier

    existing = task.on_failure_callback
    if existing is None:
        return
    callbacks = list(existing) if isinstance(existing, (list, tuple)) else [existing]
    wrapped = [
        c if isinstance(c, (ObservedCallback, MlchaosWebhookNotifier)) else ObservedCallback(c)
        for c in callbacks
    ]
    if any(w is not c for w, c in zip(wrapped, callbacks, strict=True)):
        task.on_failure_callback = wrapped


def _record_alert(context: Any, channel: str, delivered: bool, status: str) -> None:
    """Record an alert outcome for the chaos run of ``context``; never raises."""
    try:
        from mlchaos_orchestration.airflow.context import chaos_run
        from mlchaos_orchestration.core.control import record

        run = chaos_run(context)
        if run is None:
            return
        ti = context.get("ti") or context.get("task_instance")
        record(
            run.run_id,
            "alert_sent" if delivered else "alert_failed",
            source=str(getattr(ti, "task_id", "") or ""),
            channel=channel,
            delivered=delivered,
            status=status,
        )
    except Exception as exc:  # noqa: BLE001 - bookkeeping must not change the callback
        log.warning("mlchaos: could not record the alert of %s: %s", channel, exc)


# ------------------------------------------------------------------------------ task end
def _ended(ok: bool, error: Any = None) -> Any:
    def body(run: Any, ti: Any, task: Any) -> None:
        from mlchaos_orchestration.core.control import record

        task_id = str(ti.task_id)
        is_gate = _is_gate(run, task, task_id)
        if ok:
            if is_gate:
                record(run.run_id, "gate_passed", source=task_id)
            return
        message = _one_line(error)
        attempt = int(getattr(ti, "try_number", 0) or 0)
        if not _final(ti):
            record(run.run_id, "task_retry", source=task_id, attempt=attempt, message=message)
        elif is_gate and is_detection(error):
            failed = _failed_expectations(error)
            record(
                run.run_id,
                "gate_failed",
                source=task_id,
                checks_run=True,
                message=message,
                attempt=attempt,
                **({"failed": failed} if failed else {}),
            )
        elif is_gate:
            record(
                run.run_id,
                "gate_crashed",
                source=task_id,
                error_type=type(error).__name__ if error is not None else "error",
                message=_one_line(error, with_type=False),
                attempt=attempt,
            )
        else:
            record(
                run.run_id,
                "task_failed",
                source=task_id,
                attempt=attempt,
                final=True,
                message=message,
            )

    return body


def _final(ti: Any) -> bool:
    """True unless Airflow decided this failed attempt will be retried (``up_for_retry``)."""
    state = getattr(ti, "state", None)
    return str(getattr(state, "value", state)) != "up_for_retry"


def _chain(error: Any) -> list[BaseException]:
    out: list[BaseException] = []
    while isinstance(error, BaseException) and error not in out and len(out) < 20:
        out.append(error)
        suppressed = error.__suppress_context__
        error = error.__cause__ or (None if suppressed else error.__context__)
    return out


def is_detection(error: Any) -> bool:
    """Whether a gate's final error says its checks ran and found violations."""
    from mlchaos_orchestration.core.verdict import is_check_failure
    from mlchaos_orchestration.gates.gx import GateFailed

    chain = _chain(error)
    if any(isinstance(e, (GateFailed, AssertionError)) for e in chain):
        return True
    return bool(chain) and is_check_failure(*(type(e).__name__ for e in chain))


def _failed_expectations(error: Any) -> list[str]:
    from mlchaos_orchestration.gates.gx import GateFailed

    for exc in _chain(error):
        if isinstance(exc, GateFailed):
            return [str(f.get("expectation")) for f in exc.result.failed][:50]
    return []


def _one_line(error: Any, with_type: bool = True) -> str:
    if error is None:
        return ""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = type(error).__name__ if isinstance(error, BaseException) else "error"
    if not with_type:
        return (text or name)[:300]
    return (f"{name}: {text}" if text else name)[:300]


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    """Task start: recover, target_read + consumer_started, observe alerts, install hooks."""
    _guarded("running", task_instance, _started)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    """Task success: remove hooks, record reads; gate_passed for the gate."""
    _remove_hooks(task_instance)
    _flush_reads(task_instance)
    _guarded("success", task_instance, _ended(True))


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    """Task failure: remove hooks; task_retry, or (final) gate_failed / gate_crashed /
    task_failed."""
    _remove_hooks(task_instance)
    _flush_reads(task_instance)
    _guarded("failed", task_instance, _ended(False, error))
