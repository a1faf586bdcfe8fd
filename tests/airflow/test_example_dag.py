"""End-to-end: the example DAG under real Airflow ``dag.test()``, one fault per run.

Each test asserts the verdict from the ledger, the task states, the alert as received by a real
HTTP endpoint, and that every piece of stored data is byte-identical after the run.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HALTED = {
    "train_model": "upstream_failed",
    "register_model": "upstream_failed",
    "serve_batch": "upstream_failed",
    "materialize_online_features": "upstream_failed",  # nothing the gate halted reaches serving
}
CASES = {
    # experiment: (verdict, expected user task states, task whose failure alerted)
    # an empty partition is read as 0 rows: the gate's row-count floor stops it
    "outage-empty": (
        "caught",
        {"ingest": "success", "build_features": "success", "validate_features": "failed", **HALTED},
        "validate_features",
    ),
    "connector-failure": (
        "caught",
        {
            "ingest": "success",
            "build_features": "failed",
            "validate_features": "upstream_failed",
            **HALTED,
        },
        "build_features",
    ),
    "nulls-amount": (
        "caught",
        {"build_features": "success", "validate_features": "failed", **HALTED},
        "validate_features",
    ),
    "outage-missing": (
        "silent",
        {
            "ingest": "success",
            "validate_features": "success",
            "train_model": "success",
            "register_model": "success",
            "serve_batch": "success",
        },
        None,
    ),
    "stale-replay": (
        "silent",
        {
            "ingest": "success",
            "validate_features": "success",
            "train_model": "success",
            "register_model": "success",
            "serve_batch": "success",
        },
        None,
    ),
}


def _chaos(name: str) -> dict[str, Any]:
    return {"mlchaos": {"experiment": name}}


@pytest.mark.parametrize("experiment", list(CASES))
def test_fault_verdict_states_alert_restore(
    scenario: Any, webhook: Any, task_states: Any, experiment: str
) -> None:
    verdict_kind, states, alerting = CASES[experiment]
    outcome = scenario.run("feature_pipeline", _chaos(experiment))

    verdict = scenario.verdict(outcome, experiment)
    assert verdict["verdict"] == verdict_kind, verdict
    assert {k: task_states(outcome)[k] for k in states} == states
    kinds = [e.kind for e in scenario.events(outcome, experiment)]
    assert "fault_applied" in kinds and "restored" in kinds
    assert outcome["tasks"]["mlchaos_teardown.restore"] == "success"
    # the verdict task is red exactly when the verdict is bad
    assert outcome["tasks"]["mlchaos_teardown.verdict"] == (
        "failed" if verdict_kind == "silent" else "success"
    )
    after = scenario.checksums()
    # what the fault touched is byte-identical again (raw files by sha256, table rows)
    assert after["raw"] == scenario.baseline["raw"]
    if alerting:
        received = webhook.wait_for(1, timeout=5)
        assert [r.json["source"] for r in received] == [alerting]
        assert verdict["alert_delivered"] and not verdict["consumer_started"]
        if experiment == "nulls-amount":  # the data fault changed the stored features
            assert after["features"] == scenario.baseline["features"]
    else:
        assert webhook.requests == []
        assert "consumer_started" in kinds and outcome["xcoms"]["train_model"]["auc"] > 0
        # silent: the pipeline itself wrote features from the faulted input
        assert after["features"] != scenario.baseline["features"]


def test_missing_partition_is_swallowed_and_training_runs_on_old_data(scenario: Any) -> None:
    outcome = scenario.run("feature_pipeline", _chaos("outage-missing"))
    # ingest's retry loop fell back to yesterday: bad (stale) data reached training
    assert outcome["xcoms"]["ingest"]["source_ds"] == "2026-11-19"
    assert outcome["tasks"]["train_model"] == "success"
    assert scenario.verdict(outcome, "outage-missing")["reason"].startswith("consumer train_model")


def test_clean_control_run(scenario: Any, webhook: Any, task_states: Any) -> None:
    outcome = scenario.run("feature_pipeline", _chaos("control"))
    assert scenario.verdict(outcome, "control")["verdict"] == "clean"
    assert set(task_states(outcome).values()) == {"success"}
    assert outcome["tasks"]["mlchaos_teardown.verdict"] == "success"
    assert webhook.requests == []
    assert scenario.checksums() == scenario.baseline


def test_dormant_run_touches_nothing(scenario: Any, task_states: Any) -> None:
    outcome = scenario.run("feature_pipeline")
    assert set(task_states(outcome).values()) == {"success"}
    assert outcome["tasks"]["mlchaos_setup.inject"] == "success"
    assert outcome["xcoms"]["mlchaos_setup.inject"] == {"dormant": True}
    assert outcome["tasks"]["mlchaos_teardown.restore"] == "skipped"
    assert outcome["tasks"]["mlchaos_teardown.verdict"] == "skipped"
    assert scenario.ledger().list_runs() == []
    assert scenario.checksums() == scenario.baseline


def test_registry_fault_halts_at_the_promotion_gate(
    scenario: Any, webhook: Any, task_states: Any
) -> None:
    """stale-model: the champion alias moved to the oldest version behind the pipeline's back;
    register_model's promotion gate halts before anything is registered or served, alerts, and
    the MLflow registry is exactly as before."""
    from mlchaos_orchestration.testing.mlflow_fixture import Registry, registry_state

    reg = Registry(
        scenario.config.tracking_uri,
        "fraud_model",
        "champion",
        3,
        scenario.home / "mlflow-artifacts",
    )
    before = registry_state(reg)
    outcome = scenario.run("feature_pipeline", _chaos("stale-model"))
    verdict = scenario.verdict(outcome, "stale-model")
    assert verdict["verdict"] == "caught" and verdict["halted_by"] == "register_model", verdict
    states = task_states(outcome)
    assert (states["train_model"], states["register_model"]) == ("success", "failed")
    assert states["serve_batch"] == "upstream_failed"
    assert [r.json["source"] for r in webhook.wait_for(1, timeout=5)] == ["register_model"]
    assert registry_state(reg) == before
