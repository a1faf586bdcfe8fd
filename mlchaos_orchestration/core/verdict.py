"""Verdicts, computed only from ledger events, so Airflow, Dagster and plain runs agree.

- ``caught``      the run halted (gate failed, or an upstream task failed) after the fault was
                  applied, the consumer never started, and an alert was delivered in time;
- ``unalerted``   halted, consumer never started, but no alert was delivered in time;
- ``silent``      the consumer started on faulted data;
- ``false_alarm`` the clean control run halted;
- ``clean``       the clean control run passed and the consumer ran;
- ``not_applied`` no fault was applied;
- ``error``       the chaos machinery failed (apply error, restore failure, no outcome observed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlchaos_orchestration.core.ledger import Event

HALT_KINDS = ("gate_failed", "task_failed")
BAD_VERDICTS = frozenset({"silent", "unalerted", "false_alarm", "error"})


def compute_verdict(
    events: Iterable[Event], *, control: bool = False, alert_deadline_s: float = 300.0
) -> dict[str, Any]:
    """The verdict of one run from its events, with detection and alert latency (seconds)."""
    evs = sorted(events, key=lambda e: e.ts)
    first = _first_of(evs, ("run_started", "fault_applied")) or (evs[0] if evs else None)
    applied = _first_of(evs, ("fault_applied",))
    errors = [e for e in evs if e.kind == "error"]
    restore_failed = _restore_failed(evs)
    start = applied if applied is not None else first
    t0 = start.ts if start is not None else 0.0
    halt = _first_of([e for e in evs if e.ts >= t0], HALT_KINDS)
    consumer = _first_of([e for e in evs if e.ts >= t0], ("consumer_started",))
    alert = _first_of(
        [e for e in evs if e.ts >= t0 and e.data.get("delivered", True)], ("alert_sent",)
    )
    out: dict[str, Any] = {
        "verdict": None,
        "reason": "",
        "control": control,
        "halted_by": (halt.source or halt.kind) if halt else None,
        "halted_by_gate": bool(halt and halt.kind == "gate_failed"),
        "consumer_started": consumer is not None,
        "alert_delivered": alert is not None,
        "detection_latency_s": _latency(start, halt),
        "alert_latency_s": _latency(start, alert),
    }
    if errors or restore_failed:
        msg = errors[0].data.get("message", "error") if errors else "restore failed"
        return {**out, "verdict": "error", "reason": str(msg)}
    if control:
        if halt is not None:
            return {
                **out,
                "verdict": "false_alarm",
                "reason": f"clean control run halted by {out['halted_by']}",
            }
        if consumer is not None or _first_of(evs, ("gate_passed",)):
            return {**out, "verdict": "clean", "reason": "clean run passed the gate"}
        return {**out, "verdict": "error", "reason": "control run: no gate or consumer outcome"}
    if applied is None:
        return {**out, "verdict": "not_applied", "reason": "no fault was applied"}
    if consumer is not None:
        return {
            **out,
            "verdict": "silent",
            "reason": f"consumer {consumer.source or ''} started on faulted data".strip(),
        }
    if halt is None:
        return {**out, "verdict": "error", "reason": "neither a halt nor a consumer start seen"}
    in_time = alert is not None and alert.ts - halt.ts <= alert_deadline_s
    if in_time:
        return {**out, "verdict": "caught", "reason": f"halted by {out['halted_by']}, alerted"}
    why = "no alert delivered" if alert is None else "alert later than the deadline"
    return {**out, "verdict": "unalerted", "reason": f"halted by {out['halted_by']}, {why}"}


def _first_of(evs: list[Event], kinds: tuple[str, ...]) -> Event | None:
    return next((e for e in evs if e.kind in kinds), None)


def _latency(start: Event | None, end: Event | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end.ts - start.ts), 6)


def _restore_failed(evs: list[Event]) -> bool:
    failed = {e.data.get("lease_id") for e in evs if e.kind == "restore_failed"}
    restored = {e.data.get("lease_id") for e in evs if e.kind == "restored"}
    return bool(failed - restored)
