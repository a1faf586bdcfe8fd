"""Verdicts from ledger events alone."""

from __future__ import annotations

import pytest

from mlchaos_orchestration.core.ledger import Event
from mlchaos_orchestration.core.verdict import compute_verdict


def ev(kind: str, ts: float, source: str = "", **data: object) -> Event:
    return Event(run_id="r", kind=kind, ts=ts, source=source, data=dict(data))


def test_caught_with_latencies() -> None:
    v = compute_verdict(
        [
            ev("run_started", 0),
            ev("fault_applied", 1),
            ev("gate_failed", 3, "gate"),
            ev("alert_sent", 4.5, delivered=True),
            ev("restored", 5),
        ]
    )
    assert v["verdict"] == "caught"
    assert v["detection_latency_s"] == 2 and v["alert_latency_s"] == 3.5
    assert v["halted_by"] == "gate" and v["halted_by_gate"]


def test_silent_when_consumer_started_even_if_gate_failed_later() -> None:
    v = compute_verdict(
        [ev("fault_applied", 1), ev("consumer_started", 2, "train"), ev("gate_failed", 3)]
    )
    assert v["verdict"] == "silent"


def test_unalerted_without_delivery_or_too_late() -> None:
    base = [ev("fault_applied", 1), ev("gate_failed", 2)]
    assert compute_verdict(base)["verdict"] == "unalerted"
    failed = [*base, ev("alert_failed", 3, delivered=False)]
    assert compute_verdict(failed)["verdict"] == "unalerted"
    late = [*base, ev("alert_sent", 500, delivered=True)]
    assert compute_verdict(late, alert_deadline_s=300)["verdict"] == "unalerted"
    assert compute_verdict(late, alert_deadline_s=600)["verdict"] == "caught"


def test_upstream_task_failure_halts_too() -> None:
    v = compute_verdict(
        [ev("fault_applied", 1), ev("task_failed", 2, "ingest"), ev("alert_sent", 3)]
    )
    assert v["verdict"] == "caught" and v["halted_by"] == "ingest" and not v["halted_by_gate"]


@pytest.mark.parametrize(
    "events, control, expected",
    [
        ([ev("run_started", 0), ev("gate_failed", 1)], True, "false_alarm"),
        ([ev("run_started", 0), ev("gate_passed", 1), ev("consumer_started", 2)], True, "clean"),
        ([ev("run_started", 0), ev("consumer_started", 2)], False, "not_applied"),
        ([ev("fault_applied", 0), ev("error", 1, message="boom")], False, "error"),
        (
            [
                ev("fault_applied", 0),
                ev("gate_failed", 1),
                ev("alert_sent", 2),
                ev("restore_failed", 3, lease_id="L"),
            ],
            False,
            "error",
        ),
        ([ev("fault_applied", 0)], False, "error"),
    ],
)
def test_other_kinds(events: list[Event], control: bool, expected: str) -> None:
    assert compute_verdict(events, control=control)["verdict"] == expected


def test_restore_failed_then_restored_is_not_an_error() -> None:
    v = compute_verdict(
        [
            ev("fault_applied", 0),
            ev("gate_failed", 1),
            ev("alert_sent", 2),
            ev("restore_failed", 3, lease_id="L"),
            ev("restored", 4, lease_id="L"),
        ]
    )
    assert v["verdict"] == "caught"
