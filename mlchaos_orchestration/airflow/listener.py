"""Airflow listener (registered by :class:`~mlchaos_orchestration.airflow.plugin.MlchaosPlugin`).

It runs inside each task's own process, for chaos runs only (``mlchaos`` in ``dag_run.conf``):

* task start: restore expired leases (``session.recover``); record ``consumer_started`` for the
  consumer; install the in-process hooks (connector faults) of the run's active leases whose scope
  is this task or unset - removed again when the task ends (``dag.test()`` runs every task in one
  process);
* task end: ``gate_passed`` / ``gate_failed`` for the gate, ``task_failed`` for other user tasks.

It never raises into the task: problems are logged and recorded as ``error`` events.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
_HANDLES: dict[tuple[str, ...], list[Any]] = {}


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
    from mlchaos_orchestration.airflow.runtime import CHAOS_GROUP

    return task_id.startswith(CHAOS_GROUP + ".") or hasattr(task, "mlchaos_defaults")


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


def _started(run: Any, ti: Any, task: Any) -> None:
    from mlchaos_orchestration.core.control import record
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.session import recover
    from mlchaos_orchestration.interceptors.ledger_sync import LedgerHooks

    task_id = str(ti.task_id)
    ledger = Ledger()
    recover(ledger)
    if task_id == run.consumer:
        record(run.run_id, "consumer_started", source=task_id, ledger=ledger)
    watch = LedgerHooks(ledger, run_id=run.run_id, scope=task_id)
    if watch.active_specs():
        watch.start()  # removes each hook as soon as its lease ends (restore, abort, expiry)
        with _LOCK:
            _HANDLES.setdefault(_key(ti), []).append(watch)
        log.info("mlchaos: %d fault hook(s) active in task %s", len(watch.handles), task_id)


def _remove_hooks(ti: Any) -> None:
    with _LOCK:
        watches = _HANDLES.pop(_key(ti), [])
    for watch in reversed(watches):
        watch.close()


def _ended(kind_ok: bool, error: Any = None) -> Any:
    def body(run: Any, ti: Any, task: Any) -> None:
        from mlchaos_orchestration.core.control import record

        task_id = str(ti.task_id)
        is_gate = task_id == run.gate or (
            run.gate is None and getattr(task, "is_mlchaos_gate", False)
        )
        message = _one_line(error)
        if is_gate:
            record(
                run.run_id,
                "gate_passed" if kind_ok else "gate_failed",
                source=task_id,
                **({} if kind_ok else {"message": message}),
            )
        elif not kind_ok:
            record(run.run_id, "task_failed", source=task_id, message=message)

    return body


def _one_line(error: Any) -> str:
    if error is None:
        return ""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = type(error).__name__ if isinstance(error, BaseException) else "error"
    return (f"{name}: {text}" if text else name)[:300]


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    """Task start: recover, consumer_started, install this run's hooks."""
    _guarded("running", task_instance, _started)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    """Task success: remove hooks; gate_passed for the gate."""
    _remove_hooks(task_instance)
    _guarded("success", task_instance, _ended(True))


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    """Task failure: remove hooks; gate_failed for the gate, task_failed for other tasks."""
    _remove_hooks(task_instance)
    _guarded("failed", task_instance, _ended(False, error))
