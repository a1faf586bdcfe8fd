"""XCom faults go through the same guards as stored targets (environment, allowlist), their read
is in the verdict's evidence, and async pulls (``await ti.axcom_pull``) are faulted too. In
process, against a real SQLite ledger; the full Airflow run is in test_xcom_backend.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.bases.xcom import BaseXCom

from mlchaos_orchestration.airflow import xcom_backend
from mlchaos_orchestration.airflow.runtime import ChaosRun
from mlchaos_orchestration.core import control
from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec, bound_runtime_safety
from mlchaos_orchestration.core.verdict import compute_verdict
from mlchaos_orchestration.errors import SafetyError
from mlchaos_orchestration.settings import get_settings

ORDERS = {"1001": 301.27, "1002": 433.21, "1003": 502.22}
WHERE = {"task_id": "extract", "key": "return_value", "dag_id": "tutorial"}
TARGET = "xcom://extract/return_value"


def chaos_run(safety: dict[str, Any] | None = None) -> ChaosRun:
    fault = {"fault": "out_of_range", "columns": ["value"], "fraction": 0.34,
             "target": "xcom://extract"}  # fmt: skip
    spec: dict[str, Any] = {"name": "xcom", "faults": [fault]}
    if safety:
        spec["safety"] = safety
    exp = parse_experiment(spec)
    run_id = control.begin_run(exp, run_key="k1", orchestrator="airflow", pipeline="tutorial")
    return ChaosRun(exp, "k1", run_id, gate=None, consumer="transform")


def pull(run: ChaosRun) -> Any:
    return xcom_backend._apply(run, run.experiment.faults[0], ORDERS, "transform", WHERE)


def errors(run: ChaosRun) -> list[str]:
    return [e.data["message"] for e in Ledger().events(run.run_id) if e.kind == "error"]


def test_an_xcom_outside_the_allowlist_is_refused(
    mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = chaos_run()
    assert pull(run) is ORDERS  # nothing allowed: untouched
    assert errors(run) == [f"target {TARGET} refused: no allowed targets are configured "
                           "(set safety.allowed_targets or MLCHAOS_ALLOWED_TARGETS)"]  # fmt: skip
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", f"{mlchaos_home},xcom://load,xcom://extract/x")
    assert pull(run) is ORDERS
    assert errors(run)[-1] == f"target {TARGET} is not in the allowlist"
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", "xcom://extract")
    assert pull(run) != ORDERS  # allowed: the pulling task gets a faulted copy
    assert compute_verdict(Ledger().events(run.run_id))["verdict"] == "error"  # refusals stay


@pytest.mark.parametrize("entry", ["xcom://extract/return_value", "xcom://*"])
def test_the_experiment_allowlist_and_production_guard_apply(
    mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch, entry: str
) -> None:
    run = chaos_run({"allowed_targets": [entry]})
    assert pull(run) != ORDERS and errors(run) == []
    monkeypatch.setenv("MLCHAOS_ENVIRONMENT", "production")
    assert pull(run) is ORDERS and "marked production" in errors(run)[0]


def test_run_time_requests_stay_inside_the_deployment_xcom_allowlist(
    mlchaos_home: Path,
) -> None:
    deployment = [SafetySpec(allowed_targets=["xcom://extract"])]
    settings = get_settings()
    narrower = SafetySpec(allowed_targets=[TARGET])
    bounded = bound_runtime_safety(narrower, deployment=deployment, settings=settings)
    assert bounded.allowed_targets == [TARGET]
    for wider in ("xcom://*", "xcom://load"):
        with pytest.raises(SafetyError, match="outside the deployment allowlist"):
            bound_runtime_safety(
                SafetySpec(allowed_targets=[wider]), deployment=deployment, settings=settings
            )


def test_each_pull_read_is_in_the_evidence_under_its_fault(
    mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", "xcom://extract")
    run = chaos_run()
    pull(run)
    pull(run)  # a second pull: its own fault_applied and read
    verdict = compute_verdict(Ledger().events(run.run_id))
    faults = verdict["evidence"]["faults"]
    assert len(faults) == 2 and all(len(f["reads"]) == 1 for f in faults)
    reads = verdict["evidence"]["reads"]
    assert [(r["task"], r["role"], r["target"], r["matches"]) for r in reads] == [
        ("transform", "consumer", TARGET, True)
    ] * 2
    assert reads[0]["at_s"] >= 0 and reads[0]["lease_id"] is None


def test_async_pulls_are_faulted_like_sync_ones(
    mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class AsyncStore(BaseXCom):
        """A backend answering async pulls from memory (no supervisor in this process)."""

        @classmethod
        async def aget_one(cls, **kwargs: Any) -> Any:
            return dict(ORDERS)

        @classmethod
        async def aget_all(cls, **kwargs: Any) -> Any:
            return [dict(ORDERS)]

    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", "xcom://extract")
    run = chaos_run()
    monkeypatch.setattr(xcom_backend, "_pulling_task", lambda: (run, "transform", "tutorial"))
    backend = xcom_backend.chaos_xcom_backend(AsyncStore)
    one = asyncio.run(backend.aget_one(**WHERE, run_id="r"))
    (every,) = asyncio.run(backend.aget_all(**WHERE, run_id="r"))
    assert one != ORDERS and every != ORDERS and set(one) == set(ORDERS)
    kinds = [e.kind for e in Ledger().events(run.run_id)]
    assert kinds.count("fault_applied") == 2 and kinds.count("target_read") == 2
    monkeypatch.setattr(xcom_backend, "_pulling_task", lambda: None)  # dormant / not a task
    assert asyncio.run(backend.aget_one(**WHERE, run_id="r")) == ORDERS
