"""Dagster event log -> ledger events, with Dagster's own timestamps.

* the consumer asset starting to compute          -> ``consumer_started``: its last ``STEP_INPUT``
  (inputs are loaded - and faulted - before that), else its ``STEP_START`` unless the step failed
  loading an input (then it never computed)
* the gate check's evaluation: passed             -> ``gate_passed``; failed with ERROR severity
  (the check ran and found violations)            -> ``gate_failed`` {checks_run: true, message,
  failed}; a failed WARN evaluation does not block in Dagster, so it is no halt (nothing recorded)
* the gate check's step failing WITHOUT an evaluation (the check function raised: a misspelled
  expectation, an import or connection error)    -> ``gate_crashed`` {error_type, message}
* a gate that is an asset (a user-written gate step) failing -> ``gate_failed`` when its error is
  a check failure (``core.verdict.is_check_failure``), else ``gate_crashed``
* ``STEP_UP_FOR_RETRY`` (a failed attempt Dagster will retry, RetryPolicy) -> ``task_retry``
  {attempt, message}; never a halt
* the daemon's ``Sensor "<name>" acted on run status FAILURE`` engine event (a user's run-failure
  sensor handled this run without raising)      -> ``alert_sent`` {channel: dagster_sensor:<name>}
* any other ``STEP_FAILURE`` (always final: retried attempts are ``STEP_UP_FOR_RETRY``)
                                                  -> ``task_failed`` {attempt, final: true, message}

Attempts count from 1: 1 + the ``STEP_UP_FOR_RETRY`` events of the step before the event.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import dagster as dg

from mlchaos_orchestration.core.ledger import Ledger

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.dagster.scope import Scopes

SOURCE = "dagster"
_ACTED = re.compile(r'^Sensor "([^"]+)" acted on run status FAILURE')
#: Dagster's wrappers around the user's exception (skipped when naming what crashed)
_WRAPPERS = ("Dagster", "RetryRequested", "Failure")


def op_name(asset: str) -> str:
    """The op / step key Dagster gives an asset written ``a/b`` (``a__b``)."""
    return asset.replace("/", "__")


def translate_run(
    instance: dg.DagsterInstance,
    dagster_run_id: str,
    ledger_run_id: str,
    *,
    gate: str | None,
    consumer: str | None,
    ledger: Ledger | None = None,
    scopes: Scopes | None = None,
) -> list[str]:
    """Record the run's gate / consumer / retry / failure events in the ledger; return their
    kinds."""
    ledger = ledger or Ledger()
    entries = [e for e in instance.all_logs(dagster_run_id) if e.dagster_event is not None]
    found = classify_entries(entries, gate=gate, scopes=scopes)
    consumer_step = (scopes.op_for(consumer) if scopes else None) or (
        op_name(consumer) if consumer else None
    )
    start = _consumer_start(entries, consumer_step) if consumer_step else None
    if start is not None:
        found.append((start, "consumer_started", {"source": consumer}))
    found.sort(key=lambda item: item[0])
    for ts, kind, data in found:
        ledger.record(
            ledger_run_id,
            kind,
            source=data.pop("source"),
            ts=ts,
            dagster_run_id=dagster_run_id,
            **data,
        )
    return [kind for _, kind, _ in found]


def gate_step_of(gate: str | None, scopes: Scopes | None) -> tuple[str | None, bool]:
    """The gate's step key and whether the gate is an asset check."""
    if not gate:
        return None, False
    is_check = bool(scopes and gate in scopes.checks)
    step = scopes.op_for(gate) if scopes else None
    return step or op_name(gate), is_check or scopes is None


def classify_entries(
    entries: list[Any], *, gate: str | None, scopes: Scopes | None = None
) -> list[tuple[float, str, dict[str, Any]]]:
    """(timestamp, kind, data) of every event worth a ledger record (consumer start aside)."""
    gate_step, gate_is_check = gate_step_of(gate, scopes)
    evaluated_failed: set[str] = set()
    retries: dict[str, int] = {}
    found: list[tuple[float, str, dict[str, Any]]] = []
    for entry in entries:
        event = entry.dagster_event
        kind = event.event_type_value
        step = event.step_key or ""
        if kind == "ASSET_CHECK_EVALUATION":
            item = _evaluation(event, gate, evaluated_failed)
        elif kind == "STEP_UP_FOR_RETRY":
            retries[step] = retries.get(step, 0) + 1
            item = (
                "task_retry",
                {
                    "source": _name_of(step, gate, gate_step),
                    "step": step,
                    "attempt": retries[step],
                    "message": _error_chain(_error(event)),
                },
            )
        elif kind == "ENGINE_EVENT":
            item = _sensor_acted(event)
        elif kind == "STEP_FAILURE":
            item = _failure(
                event,
                attempt=retries.get(step, 0) + 1,
                gate=gate,
                gate_step=gate_step,
                gate_is_check=gate_is_check,
                evaluated_failed=evaluated_failed,
            )
        else:
            item = None
        if item is not None:
            found.append((entry.timestamp, item[0], item[1]))
    return found


def _evaluation(
    event: dg.DagsterEvent, gate: str | None, evaluated_failed: set[str]
) -> tuple[str, dict[str, Any]] | None:
    check = event.event_specific_data
    if gate and check.check_name != gate:
        return None
    if check.passed:
        return "gate_passed", {"source": check.check_name, "checks_run": True}
    if check.severity != dg.AssetCheckSeverity.ERROR:
        return None  # a WARN failure does not block downstream steps
    evaluated_failed.add(event.step_key or "")
    description = _description(check) or (
        f"asset check {check.check_name} on {check.asset_key.to_user_string()} failed"
    )
    return "gate_failed", {
        "source": check.check_name,
        "checks_run": True,
        "asset": check.asset_key.to_user_string(),
        "severity": str(check.severity.value),
        "message": description,
        "description": description,
        "failed": _failed_expectations(check),
    }


def _failure(
    event: dg.DagsterEvent,
    *,
    attempt: int,
    gate: str | None,
    gate_step: str | None,
    gate_is_check: bool,
    evaluated_failed: set[str],
) -> tuple[str, dict[str, Any]] | None:
    from mlchaos_orchestration.core.verdict import is_check_failure

    step = event.step_key or ""
    error = _error(event)
    message = _error_chain(error)
    if step in evaluated_failed:
        return None  # the evaluation above is the gate's outcome
    if gate and step == gate_step:
        names = _error_classes(error)
        if not gate_is_check and is_check_failure(*names):
            return "gate_failed", {"source": gate, "checks_run": True, "message": message}
        return "gate_crashed", {
            "source": gate,
            "step": step,
            "attempt": attempt,
            "error_type": _user_error_type(names),
            "message": _error_chain(_user_error(error)) or message,
        }
    return "task_failed", {
        "source": step,
        "attempt": attempt,
        "final": True,
        "message": message,
    }


def _sensor_acted(event: dg.DagsterEvent) -> tuple[str, dict[str, Any]] | None:
    """The daemon's record that a run-failure sensor handled this run without raising."""
    match = _ACTED.match(event.message or "")
    if match is None or match.group(1).startswith("mlchaos_"):
        return None  # not a sensor reaction, or ours (it records its own delivery)
    channel = f"dagster_sensor:{match.group(1)}"
    return "alert_sent", {
        "source": channel,
        "channel": channel,
        "delivered": True,
        "status": "daemon: sensor acted on run status FAILURE",
    }


def _name_of(step: str, gate: str | None, gate_step: str | None) -> str:
    return gate if gate and step == gate_step else step


def _consumer_start(entries: list[Any], step: str) -> float | None:
    """When the consumer step began computing (see the module docstring), or None."""
    mine = [e for e in entries if e.dagster_event.step_key == step]
    inputs = [e.timestamp for e in mine if e.dagster_event.event_type_value == "STEP_INPUT"]
    if inputs:
        return max(inputs)
    started = next(
        (e.timestamp for e in mine if e.dagster_event.event_type_value == "STEP_START"), None
    )
    failed_loading = any(
        e.dagster_event.event_type_value == "STEP_FAILURE"
        and "DagsterExecutionLoadInputError" in _error_classes(_error(e.dagster_event))
        for e in mine
    )
    return None if failed_loading else started


def _error(event: dg.DagsterEvent) -> Any:
    return getattr(event.event_specific_data, "error", None)


def _error_classes(error: Any) -> list[str]:
    names = []
    while error is not None and len(names) < 20:
        names.append(str(getattr(error, "cls_name", "") or ""))
        error = getattr(error, "cause", None) or getattr(error, "context", None)
    return names


def _user_error(error: Any) -> Any:
    """The first error of the chain that is not one of Dagster's wrappers (else ``error``)."""
    item = error
    while item is not None:
        if not str(getattr(item, "cls_name", "") or "").startswith(_WRAPPERS):
            return item
        item = getattr(item, "cause", None) or getattr(item, "context", None)
    return error


def _user_error_type(names: list[str]) -> str:
    """The first class of the chain that is not one of Dagster's wrappers."""
    user = [n for n in names if n and not n.startswith(_WRAPPERS)]
    return (user or names or ["Exception"])[0]


def _error_chain(error: Any, limit: int = 500) -> str:
    """First lines of a serialised error and its causes: ``A: ... <- B: ...``."""
    lines = []
    while error is not None and len(lines) < 5:
        text = (getattr(error, "message", "") or "").strip().splitlines()
        if text:
            lines.append(text[0])
        error = getattr(error, "cause", None)
    return " <- ".join(lines)[:limit]


def _description(check: Any) -> str:
    description = getattr(check, "description", None) or ""
    return str(description)[:500]


def _failed_expectations(check: Any) -> list[str]:
    value = (getattr(check, "metadata", None) or {}).get("failed_expectations")
    value = getattr(value, "value", value) or getattr(value, "data", None)
    return [str(v) for v in value][:50] if isinstance(value, list) else []
