"""Runs launched by tag (what the UI launchpad, a schedule or a sensor does) through a real
DagsterInstance with the multiprocess executor (``execute_job`` on a reconstructable job: the
run worker is this process, every step a child process): run-start faults (outage, replay,
connector) are applied at run start with their evidence and give the in-process verdicts; every
fault is restored when the run's last step finished, before any sensor ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_support import DS, tree_digest

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.dagster import TAG_EXPERIMENT, run_experiment_dagster
from mlchaos_orchestration.dagster.request import ledger_run_id

PARTITION_TAG = "dagster/partition"


def _launch(instance: Any, name: str | None) -> dg.ExecuteJobResult:
    from mlchaos_orchestration.testing.distributed.matrix_job import tagged_job

    tags = {PARTITION_TAG: DS, **({TAG_EXPERIMENT: name} if name else {})}
    return dg.execute_job(
        dg.reconstructable(tagged_job), instance=instance, tags=tags, raise_on_error=False
    )


def _sensors_finish(defs: Any, instance: Any, result: dg.ExecuteJobResult) -> dict[str, Any]:
    """What the daemon's run-status sensors do once the run ended: the verdict."""
    from dagster_support import evaluate_alert_sensor

    from mlchaos_orchestration.dagster.finishing import finish_tagged_run

    run = instance.get_run_by_id(result.run_id)
    if result.success:
        verdict = finish_tagged_run(instance, run, gate="validate_features", consumer="train_model")
        assert verdict is not None
        return verdict
    evaluate_alert_sensor(defs, result, instance)
    record = Ledger().get_run(ledger_run_id(run.tags, run.run_id) or "")
    assert record is not None and record.get("verdict"), record
    return {"verdict": record["verdict"]}


@pytest.mark.parametrize(
    "name", ["outage-missing", "outage-empty", "stale-replay", "connector-failure"]
)
def test_tag_launched_multiprocess_run_applies_run_start_faults(
    chaos_defs: Any, matrix: Any, instance: Any, example_env: Any, name: str
) -> None:
    raw = Path(example_env.raw_root)
    before = tree_digest(raw)
    expected = run_experiment_dagster(chaos_defs, matrix.get(name), partition_key=DS)
    assert tree_digest(raw) == before

    result = _launch(instance, name)
    run_id = ledger_run_id(result.dagster_run.tags, result.run_id)
    assert run_id is not None
    events = Ledger().events(run_id)
    (applied,) = [e for e in events if e.kind == "fault_applied"]
    assert applied.source == "dagster" and applied.data["lease_id"]  # at run start, leased
    # restored when the last step finished, before any sensor ran
    assert not Ledger().live_leases(run_id=run_id)
    restored = [e for e in events if e.kind == "restored"]
    assert [e.data["reason"] for e in restored] == ["run ended"]
    assert tree_digest(raw) == before
    if name == "connector-failure":
        stats = [e for e in events if e.kind == "interceptor_stats"]
        assert sum(e.data.get("failed", 0) for e in stats) >= 1  # failed inside a step process

    verdict = _sensors_finish(chaos_defs, instance, result)
    assert verdict["verdict"] == expected["verdict"], (verdict, expected)


def test_the_next_run_sees_restored_data(chaos_defs: Any, instance: Any) -> None:
    """outage-missing hides the day's raw partition; the next (dormant) run, launched before any
    sensor finished the chaos run, reads the real partition again."""
    chaos = _launch(instance, "outage-missing")
    assert chaos.success
    source = _source_ds(instance, chaos.run_id)
    assert source != DS  # the chaos run fell back to an older partition: the fault acted
    after = _launch(instance, None)
    assert after.success
    assert _source_ds(instance, after.run_id) == DS


def test_refused_run_start_fault_fails_the_run_before_any_step(
    chaos_defs: Any, instance: Any, example_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run-start fault the safety guards refuse (a production environment): the run fails,
    no step ran, nothing touched."""
    raw = Path(example_env.raw_root)
    before = tree_digest(raw)
    monkeypatch.setenv("MLCHAOS_ENVIRONMENT", "production")
    result = _launch(instance, "outage-missing")
    assert not result.success
    steps = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_START)
    assert steps == []
    run_id = ledger_run_id(result.dagster_run.tags, result.run_id)
    kinds = [e.kind for e in Ledger().events(run_id or "")]
    assert "error" in kinds and "fault_applied" not in kinds
    assert tree_digest(raw) == before


def _source_ds(instance: Any, dagster_run_id: str) -> str:
    """The ``source_ds`` metadata raw_events materialized in a run."""
    (event,) = [
        e
        for e in instance.all_logs(
            dagster_run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        if e.dagster_event.asset_key == dg.AssetKey("raw_events")
    ]
    meta = event.dagster_event.event_specific_data.materialization.metadata
    return str(meta["source_ds"].value)


def test_every_executor_of_the_definitions_is_wrapped(mlchaos_home: Path) -> None:
    """The Definitions' default executor and every job's own carry the chaos run start / end;
    a job added after with_chaos gets it through chaos_executor_for."""
    from mlchaos_orchestration.dagster import chaos_executor_for, with_chaos

    @dg.asset
    def numbers() -> int:
        return 1

    @dg.op
    def one() -> int:
        return 1

    @dg.job(executor_def=dg.in_process_executor)
    def op_job() -> None:
        one()

    asset_job = dg.define_asset_job("asset_job", ["numbers"], executor_def=dg.in_process_executor)
    plain = dg.Definitions(assets=[numbers], jobs=[asset_job, op_job])
    chaos = with_chaos(plain)
    mark = "__mlchaos_deployment__"
    for name in ("asset_job", "op_job"):
        executor = chaos.resolve_job_def(name).executor_def
        assert executor.name == "in_process" and hasattr(executor, mark)
    default = chaos.resolve_implicit_global_asset_job_def().executor_def
    assert default.name == "multi_or_in_process_executor" and hasattr(default, mark)
    assert not hasattr(plain.resolve_job_def("asset_job").executor_def, mark)  # user's untouched
    assert hasattr(chaos_executor_for(chaos, dg.multiprocess_executor), mark)
    with pytest.raises(ValueError, match="not wrapped by with_chaos"):
        chaos_executor_for(plain, dg.multiprocess_executor)
