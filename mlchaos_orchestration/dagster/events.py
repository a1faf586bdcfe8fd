"""Dagster event log -> ledger events, with Dagster's own timestamps.

* the consumer asset starting to compute         -> ``consumer_started``: its last ``STEP_INPUT``
  (inputs are loaded - and faulted - before that), else its ``STEP_START`` unless the step failed
  loading an input (then it never computed)
* the gate check's evaluation, failed (ERROR)    -> ``gate_failed``; passed -> ``gate_passed``
* a gate check step that emitted no result       -> nothing (the verdict stays honest: if training
  then ran, it is ``silent``)
* any other ``STEP_FAILURE``                     -> ``task_failed`` (halt)
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlchaos_orchestration.core.ledger import Ledger

SOURCE = "dagster"


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
) -> list[str]:
    """Record the run's gate / consumer / failure events in the ledger; return their kinds."""
    ledger = ledger or Ledger()
    gate_steps: set[str] = set()
    found: list[tuple[float, str, dict[str, Any]]] = []
    entries = [e for e in instance.all_logs(dagster_run_id) if e.dagster_event is not None]
    for entry in entries:
        kind, data = _classify(entry.dagster_event, gate=gate, gate_steps=gate_steps)
        if kind is not None:
            found.append((entry.timestamp, kind, data))
    start = _consumer_start(entries, op_name(consumer)) if consumer else None
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
        and "DagsterExecutionLoadInputError" in _error_classes(e.dagster_event)
        for e in mine
    )
    return None if failed_loading else started


def _error_classes(event: dg.DagsterEvent) -> str:
    error, names = getattr(event.event_specific_data, "error", None), []
    while error is not None:
        names.append(str(getattr(error, "cls_name", "")))
        error = getattr(error, "cause", None)
    return " ".join(names)


def _classify(
    event: dg.DagsterEvent, *, gate: str | None, gate_steps: set[str]
) -> tuple[str | None, dict[str, Any]]:
    kind = event.event_type_value
    step = event.step_key or ""
    if kind == "ASSET_CHECK_EVALUATION":
        check = event.event_specific_data
        if gate and check.check_name != gate:
            return None, {}
        if check.passed:
            return "gate_passed", {"source": check.check_name}
        gate_steps.add(step)
        return "gate_failed", {
            "source": check.check_name,
            "asset": check.asset_key.to_user_string(),
            "severity": str(check.severity.value),
            "description": _description(check),
        }
    if kind == "STEP_FAILURE" and step not in gate_steps:
        error = getattr(event.event_specific_data, "error", None)
        return "task_failed", {"source": step, "message": _error_chain(error)}
    return None, {}


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
