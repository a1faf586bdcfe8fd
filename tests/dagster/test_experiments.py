"""Acceptance: experiments of the example matrix run through real Dagster (temp instance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_support import DS, tree_digest

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.dagster import run_experiment_dagster

TRAIN = dg.AssetKey("train_model")


def _run(chaos_defs: Any, matrix: Any, instance: Any, name: str) -> dict[str, Any]:
    return run_experiment_dagster(chaos_defs, matrix.get(name), partition_key=DS, instance=instance)


def _trained(instance: Any, verdict: dict[str, Any]) -> bool:
    records = instance.get_records_for_run(verdict["dagster_run_id"]).records
    return any(
        r.event_log_entry.dagster_event
        and r.event_log_entry.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
        and r.event_log_entry.dagster_event.asset_key == TRAIN
        for r in records
    )


def _kinds(verdict: dict[str, Any]) -> list[str]:
    return [e.kind for e in Ledger().events(verdict["run_id"])]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("outage-empty", "caught"),
        ("outage-missing", "silent"),
        ("stale-replay", "silent"),
    ],
)
def test_stored_environment_faults(
    chaos_defs: Any,
    matrix: Any,
    instance: Any,
    webhook: Any,
    example_env: Any,
    name: str,
    expected: str,
) -> None:
    raw = Path(example_env.raw_root)
    before = tree_digest(raw)
    verdict = _run(chaos_defs, matrix, instance, name)
    assert verdict["verdict"] == expected, verdict
    assert tree_digest(raw) == before  # byte-exact restore of the raw partitions
    assert "restored" in _kinds(verdict)
    if expected == "caught":
        assert not _trained(instance, verdict)
        assert webhook.wait_for(1, timeout=10)
        assert webhook.requests[0].json["run_id"] == verdict["run_id"]
        assert verdict["halted_by_gate"] is True
    else:
        assert _trained(instance, verdict)
        assert webhook.requests == []


@pytest.mark.parametrize("features_url", ["sqlite", "postgresql"], indirect=True)
def test_connector_failure_half_of_statements(
    chaos_defs: Any, matrix: Any, instance: Any, webhook: Any, features_url: str
) -> None:
    from mlchaos_orchestration import interceptors

    verdict = _run(chaos_defs, matrix, instance, "connector-failure")
    assert verdict["verdict"] == "caught", verdict
    assert not _trained(instance, verdict)
    assert webhook.wait_for(1, timeout=10)
    events = Ledger().events(verdict["run_id"])
    failed = [e for e in events if e.kind == "task_failed"]
    assert failed and "OperationalError" in failed[0].data["message"]
    assert not any(e.kind == "gate_failed" for e in events)
    assert Ledger().live_leases(run_id=verdict["run_id"]) == []
    assert interceptors.active() == []  # installed only around the IO manager's reads and writes


def test_nulls_in_gate_input_are_caught(
    chaos_defs: Any, matrix: Any, instance: Any, webhook: Any, example_env: Any
) -> None:
    from mlchaos_orchestration.examples.steps import read_features

    verdict = _run(chaos_defs, matrix, instance, "nulls-amount")
    assert verdict["verdict"] == "caught", verdict
    assert not _trained(instance, verdict)
    assert webhook.wait_for(1, timeout=10)
    events = Ledger().events(verdict["run_id"])
    applied = next(e for e in events if e.kind == "fault_applied")
    assert applied.data["asset"] == "features"
    assert applied.data["details"]["rows_changed"] == 300  # 20% of 1500
    gate = next(e for e in events if e.kind == "gate_failed")
    assert "ExpectColumnValuesToNotBeNull" in gate.data["description"]
    # in memory only: the stored features partition was never changed
    assert read_features(example_env.features_url, ds=DS)["amount"].notna().all()


def test_control_run_is_clean(chaos_defs: Any, matrix: Any, instance: Any, webhook: Any) -> None:
    verdict = _run(chaos_defs, matrix, instance, "control")
    assert verdict["verdict"] == "clean", verdict
    assert verdict["run_success"] is True
    assert _trained(instance, verdict)
    assert "gate_passed" in _kinds(verdict)
    assert webhook.requests == []


def test_both_orchestrators_run_the_one_example_matrix(matrix: Any) -> None:
    """The Airflow example DAG and the Dagster example Definitions read the same experiments
    file (whose verdicts the Airflow e2e tests assert), so both are held to the same outcomes."""
    import subprocess
    import sys

    from mlchaos_orchestration.examples import definitions

    the_file = Path(definitions.__file__).with_name("experiments.yaml")
    assert Path(definitions.EXPERIMENTS_FILE) == the_file
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mlchaos_orchestration.examples import dag; print(dag.EXPERIMENTS_FILE)",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip().splitlines()[-1]) == the_file
    assert [e.name for e in matrix.experiments][:2] == ["control", "outage-missing"]


@pytest.mark.parametrize("name", ["out-of-range-age", "duplicates", "label-shuffle", "mislabel"])
def test_other_data_faults_meet_expectations(
    chaos_defs: Any, matrix: Any, instance: Any, webhook: Any, name: str
) -> None:
    verdict = _run(chaos_defs, matrix, instance, name)
    assert verdict["verdict"] == matrix.get(name).expect, verdict
    assert _trained(instance, verdict) is (verdict["verdict"] == "silent")


@pytest.mark.parametrize("name", ["model-schema-change", "alias-moved-unvalidated"])
def test_registry_faults_halt_at_the_promotion_gate(
    chaos_defs: Any, matrix: Any, instance: Any, webhook: Any, example_env: Any, name: str
) -> None:
    """A registry changed behind the pipeline's back: the register_model asset's promotion gate
    halts before anything is registered, serve_batch never runs, the MLflow registry is exactly
    as before (every version, alias, tag, metric, table row and model file)."""
    from mlchaos_orchestration.testing.mlflow_fixture import Registry, registry_state

    reg = Registry(
        example_env.tracking_uri,
        "fraud_model",
        "champion",
        3,
        Path(example_env.model_dir).parent / "mlflow-artifacts",
    )
    before = registry_state(reg)
    verdict = _run(chaos_defs, matrix, instance, name)
    assert verdict["verdict"] == "caught", verdict
    assert verdict["halted_by"] == "register_model" and verdict["halted_by_gate"] is True
    assert not verdict["consumer_started"] and _trained(instance, verdict)
    assert webhook.wait_for(1, timeout=10)
    assert registry_state(reg) == before
