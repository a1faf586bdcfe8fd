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


# ----------------------------------------------------------------------------- issue 9 rules
STORED = {"lease_id": "L", "fault": "nulls", "targets": ["/d/orders.csv"]}


def stored_fault(ts: float = 1, **extra: object) -> Event:
    data = {**STORED, "fingerprint": {"/d/orders.csv": "f" * 64}, "rows_changed": 5, **extra}
    return ev("fault_applied", ts, "nulls", **data)


def read(ts: float, role: str, task: str, matches: bool) -> Event:
    return ev(
        "target_read",
        ts,
        task,
        task=task,
        role=role,
        lease_id="L",
        target="/d/orders.csv",
        matches=matches,
    )


def test_retry_is_not_a_halt_and_a_retried_control_run_is_clean() -> None:
    v = compute_verdict(
        [
            ev("run_started", 0),
            ev("task_retry", 1, "validate", attempt=1, message="connection reset"),
            ev("gate_passed", 2, "validate"),
            ev("consumer_started", 3, "train"),
        ],
        control=True,
    )
    assert v["verdict"] == "clean" and v["retries"] == 1
    assert v["evidence"]["retries"][0]["attempt"] == 1
    assert v["evidence"]["halt"] is None and "1 retry" in v["reason"]
    # the same failure recorded as task_failed final=False is a retry too
    v = compute_verdict(
        [
            ev("run_started", 0),
            ev("gate_failed", 1, "validate", final=False, attempt=1, checks_run=True),
            ev("gate_passed", 2, "validate"),
        ],
        control=True,
    )
    assert v["verdict"] == "clean" and v["retries"] == 1


def test_final_failure_halts_with_first_failure_latency() -> None:
    v = compute_verdict(
        [
            stored_fault(1),
            read(1.5, "gate", "validate", True),
            ev("task_retry", 2, "validate", attempt=1),
            ev("gate_failed", 4, "validate", attempt=2, final=True, checks_run=True),
            ev("alert_sent", 5, channel="SlackWebhookNotifier", delivered=True, status=200),
        ]
    )
    assert v["verdict"] == "caught" and v["halted_by_gate"]
    assert v["first_failure_latency_s"] == 1 and v["detection_latency_s"] == 3
    assert v["evidence"]["halt"] == {
        "task": "validate",
        "kind": "gate_failed",
        "attempt": 2,
        "final": True,
        "message": "",
    }
    assert "SlackWebhookNotifier" in v["reason"]
    assert v["evidence"]["alerts"] == [
        {"channel": "SlackWebhookNotifier", "delivered": True, "status": 200}
    ]


def test_old_task_failed_without_final_counts_as_final() -> None:
    v = compute_verdict([ev("fault_applied", 1), ev("task_failed", 2, "ingest")])
    assert v["verdict"] == "unalerted" and v["halted_by"] == "ingest"


@pytest.mark.parametrize("control", [False, True])
def test_gate_crash_is_never_caught_nor_a_false_alarm(control: bool) -> None:
    events = [
        ev("run_started", 0),
        *([] if control else [stored_fault(1), read(1.5, "gate", "validate", True)]),
        ev(
            "gate_crashed",
            2,
            "validate",
            error_type="SpecError",
            message="unknown expectation type 'ExpectColumnValuesToNotBeNul'",
        ),
        ev("alert_sent", 3, delivered=True),
    ]
    v = compute_verdict(events, control=control)
    assert v["verdict"] == "gate_crashed"
    assert "ExpectColumnValuesToNotBeNul" in v["reason"] and "validate" in v["reason"]
    assert v["evidence"]["gate"]["crashed"] and v["evidence"]["gate"]["ran_checks"] is False
    assert not v["halted_by_gate"]


def test_gate_failed_without_checks_run_is_a_crash_and_old_gate_failed_a_detection() -> None:
    crash = compute_verdict([stored_fault(1), ev("gate_failed", 2, "g", checks_run=False)])
    assert crash["verdict"] == "gate_crashed"
    old = compute_verdict([ev("fault_applied", 1), ev("gate_failed", 2, "g")])
    assert old["verdict"] == "unalerted" and old["halted_by_gate"]


def test_not_reached_when_the_producer_rewrote_the_target() -> None:
    v = compute_verdict(
        [
            stored_fault(1),
            read(1.4, "gate", "validate", False),
            ev("gate_passed", 2, "validate"),
            read(2.5, "consumer", "train", False),
            ev("consumer_started", 3, "train"),
        ]
    )
    assert v["verdict"] == "not_reached"
    assert "rewritten" in v["reason"] and "0.4 s" in v["reason"] and "/d/orders.csv" in v["reason"]
    assert v["reason"].count(".") <= 4  # one sentence (numbers and the path have dots)


def test_silent_needs_evidence_the_consumer_got_the_fault() -> None:
    with_evidence = compute_verdict(
        [
            stored_fault(1),
            read(1.5, "gate", "validate", True),
            ev("gate_passed", 2, "validate"),
            read(2.5, "consumer", "train", True),
            ev("consumer_started", 3, "train"),
        ]
    )
    assert with_evidence["verdict"] == "silent"
    assert "read the faulted /d/orders.csv" in with_evidence["reason"]
    no_read = compute_verdict(
        [stored_fault(1), ev("gate_passed", 2, "validate"), ev("consumer_started", 3, "train")]
    )
    assert no_read["verdict"] == "not_reached"
    assert "no task read /d/orders.csv" in no_read["reason"]


def test_zero_rows_changed_is_not_reached_even_when_something_halted() -> None:
    v = compute_verdict(
        [
            stored_fault(1, rows_changed=0),
            read(1.5, "gate", "validate", True),
            ev("task_failed", 2, "other", final=True),
        ]
    )
    assert v["verdict"] == "not_reached" and "changed 0 rows" in v["reason"]
    assert "did not come from it" in v["reason"]


def test_in_memory_fault_at_the_gate_reached_it_by_construction() -> None:
    events = [
        ev(
            "fault_applied",
            1,
            "validate",
            fault="duplicate_rows",
            site={"step": "validate", "input": "features"},
            rows_changed=12,
        ),
        ev("gate_passed", 2, "validate"),
        ev("consumer_started", 3, "train"),
    ]
    v = compute_verdict(events)
    assert v["verdict"] == "silent" and "as validate loaded it" in v["reason"]
    assert v["evidence"]["rows_changed"] == 12
    events[0].data["rows_changed"] = 0
    assert compute_verdict(events)["verdict"] == "not_reached"


def connector(ts: float = 1) -> Event:
    return ev(
        "fault_applied",
        ts,
        "connector_failure",
        fault="connector_failure",
        lease_id="C",
        hook=True,
        targets=["sqlite:///f.db#*"],
    )


def stats(ts: float, intercepted: int, failed: int) -> Event:
    return ev("interceptor_stats", ts, lease_id="C", intercepted=intercepted, failed=failed)


def test_connector_fault_evidence_from_interceptor_stats() -> None:
    zero = compute_verdict(
        [connector(), ev("gate_passed", 2), ev("consumer_started", 3, "train"), stats(4, 0, 0)]
    )
    assert zero["verdict"] == "not_reached" and "intercepted 0 calls" in zero["reason"]
    hit = compute_verdict(
        [
            connector(),
            stats(2, 10, 4),
            stats(2.5, 3, 1),
            ev("gate_passed", 2.6),
            ev("consumer_started", 3, "train"),
        ]
    )
    assert hit["verdict"] == "silent" and hit["evidence"]["calls"] == {
        "intercepted": 13,
        "failed": 5,
    }
    unknown = compute_verdict([connector(), ev("consumer_started", 3, "train")])
    assert unknown["verdict"] == "not_reached"  # no stats, no claim


def test_outage_absent_while_the_pipeline_ran_is_evidence() -> None:
    v = compute_verdict(
        [
            ev(
                "fault_applied",
                1,
                fault="upstream_outage",
                lease_id="L",
                targets=["/raw/ds=1"],
                fingerprint={"/raw/ds=1": "absent"},
            ),
            ev(
                "target_read",
                2,
                "train",
                task="train",
                role="consumer",
                lease_id="L",
                target="/raw/ds=1",
                fingerprint="absent",
                matches=True,
            ),
            ev("consumer_started", 3, "train"),
        ]
    )
    assert v["verdict"] == "silent"


def test_alert_not_expected_is_still_unalerted_but_flagged() -> None:
    from mlchaos_orchestration.core.verdict import fails, parse_fail_on

    v = compute_verdict(
        [stored_fault(1), read(1.2, "gate", "g", True), ev("gate_failed", 2, "g", checks_run=True)],
        alert_expected=False,
    )
    assert v["verdict"] == "unalerted" and v["alert_expected"] is False
    assert "alert.expected: false" in v["reason"]
    assert not fails(v, parse_fail_on("default"))
    assert fails(v, parse_fail_on("unalerted!"))
    assert fails({**v, "alert_expected": True}, parse_fail_on("unalerted"))
    assert fails({"verdict": "gate_crashed"}, parse_fail_on("default"))
    assert not fails({"verdict": "not_reached"}, parse_fail_on("default"))
    assert fails(None, {"error"})
    with pytest.raises(ValueError, match="did you mean 'silent'"):
        parse_fail_on("silnet")


@pytest.mark.parametrize(
    "names, detected",
    [
        (("mlchaos_orchestration.gates.gx.GateFailed",), True),
        (("AssertionError",), True),
        (("DataQualityCheckFailed",), True),
        (("mypkg.ExpectationFailedError",), True),
        (("AirflowException", "GateFailed"), True),  # anywhere in the chain
        (("great_expectations.exceptions.InvalidExpectationConfigurationError",), False),
        (("pydantic_core._pydantic_core.ValidationError",), False),
        (("SpecError",), False),
        (("ModuleNotFoundError",), False),
        (("OperationalError",), False),
        (("CheckConnectionError",), False),
        ((), False),
    ],
)
def test_is_check_failure(names: tuple[str, ...], detected: bool) -> None:
    from mlchaos_orchestration.core.verdict import is_check_failure

    assert is_check_failure(*names) is detected


def test_evidence_is_json_able() -> None:
    import json

    v = compute_verdict(
        [stored_fault(1), read(1.5, "gate", "g", True), ev("gate_failed", 2, "g", checks_run=True)]
    )
    assert json.loads(json.dumps(v))["evidence"]["reads"][0]["matches"] is True


def test_a_read_upstream_of_the_consumer_reaches_it_and_others_do_not() -> None:
    def upstream_read(upstream_of: list[str]) -> Event:
        return ev(
            "target_read",
            2,
            "ingest",
            task="ingest",
            role="task",
            lease_id="L",
            target="/d/orders.csv",
            matches=True,
            upstream_of=upstream_of,
        )

    flowed = [
        stored_fault(),
        upstream_read(["validate", "train"]),
        ev("consumer_started", 3, "train"),
    ]
    v = compute_verdict(flowed)
    assert v["verdict"] == "silent"
    assert "ingest read the faulted /d/orders.csv (upstream of consumer train)" in v["reason"]
    aside = [stored_fault(), upstream_read(["report"]), ev("consumer_started", 3, "train")]
    assert compute_verdict(aside)["verdict"] == "not_reached"
