"""Run one experiment on a Dagster asset graph and return its verdict.

``begin_run`` -> check the gate / consumer / ``at`` names against the asset graph -> apply the
experiment's stored faults that land before the run (``control.inject``; stored faults whose
``at`` has a producing step land right after it, in the step - :mod:`.compute` - and are only
checked against the safety guards here; in-memory faults act in the IO manager) -> execute the
job in process with the chaos tags -> translate the Dagster event log into ledger events -> for
a failed run, evaluate our alert sensor and the user's own run-failure sensors -> ``finish``
(restores every stored fault byte-exactly, computes the verdict) -> the verdict as tags of the
Dagster run (:func:`~.finishing.tag_verdict`).

Without a job or an asset selection the run is the Definitions' implicit asset job, minus the
resilience assets of :mod:`.resilience` (a chaos run never starts a resilience suite).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import dagster as dg

from mlchaos_orchestration.core.experiment import Experiment
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.dagster.alerting import SENSOR_NAME
from mlchaos_orchestration.dagster.request import ORCHESTRATOR, TAG_EXPERIMENT, TAG_RUN_ID
from mlchaos_orchestration.dagster.scope import Scopes

META_GATE = "mlchaos/gate"
META_CONSUMER = "mlchaos/consumer"
META_SENSOR = "mlchaos/alert_sensor"
#: asset tag of the resilience assets (:mod:`.resilience`), left out of chaos runs
TAG_RESILIENCE_ASSET = "mlchaos/resilience"


def run_experiment_dagster(
    defs: dg.Definitions,
    exp: Experiment,
    *,
    partition_key: str | None = None,
    ds: str | None = None,
    instance: dg.DagsterInstance | None = None,
    job_name: str | None = None,
    pipeline: str = "dagster",
    suite_id: str | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
) -> dict[str, Any]:
    """Execute ``exp`` against ``defs`` (wrapped by :func:`~.definitions.with_chaos`): the job
    ``job_name``, else the implicit asset job on ``asset_selection`` (default: every asset but
    the resilience assets).

    Returns the verdict dict plus ``run_id`` (ledger), ``dagster_run_id`` and ``run_success``.
    """
    from mlchaos_orchestration.core.control import begin_run, finish
    from mlchaos_orchestration.dagster.finishing import tag_verdict
    from mlchaos_orchestration.dagster.wrap import build_scopes

    instance = instance or _default_instance()
    ledger = Ledger()
    dagster_run_id = str(uuid.uuid4())
    day = ds or (partition_key or "")[:10] or None
    run_id = begin_run(
        exp,
        run_key=dagster_run_id,
        orchestrator=ORCHESTRATOR,
        pipeline=pipeline,
        ledger=ledger,
        suite_id=suite_id,
        meta={"partition_key": partition_key, "ds": day},
    )
    outcome: dict[str, Any] = {
        "run_id": run_id,
        "dagster_run_id": dagster_run_id,
        "run_success": None,
    }
    try:
        scopes = build_scopes(defs)
        if _names_known(run_id, exp, defs, scopes, ledger) and inject_run_start(
            run_id, exp, day, dagster_run_id, ledger, scopes
        ):
            result = _execute(
                defs,
                job_name,
                instance,
                partition_key,
                dagster_run_id,
                {TAG_RUN_ID: run_id, TAG_EXPERIMENT: exp.name},
                asset_selection,
            )
            outcome["run_success"] = result.success
            _observe(defs, exp, instance, result, run_id, ledger, scopes)
    except Exception as exc:  # noqa: BLE001 - the verdict records it; finish still restores
        ledger.record(
            run_id,
            "error",
            source=ORCHESTRATOR,
            stage="execute",
            message=f"{type(exc).__name__}: {str(exc)[:300]}",
        )
    finally:
        verdict = finish(run_id, ledger=ledger)
    if outcome["run_success"] is not None:
        tag_verdict(instance, dagster_run_id, verdict)
    return {**verdict, **outcome}


def _default_instance() -> dg.DagsterInstance:
    import os

    return (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )


def _names_known(
    run_id: str, exp: Experiment, defs: dg.Definitions, scopes: Scopes, ledger: Ledger
) -> bool:
    """Gate / consumer / ``at`` names exist in the graph; else one ``error`` line, False."""
    from mlchaos_orchestration.errors import SpecError

    try:
        scopes.check_names(
            gate=exp.gate or meta_value(defs, META_GATE),
            consumer=exp.consumer or meta_value(defs, META_CONSUMER),
            at=[f.at for f in exp.faults],
            where=f"experiment {exp.name!r}",
        )
    except SpecError as exc:
        ledger.record(run_id, "error", source=ORCHESTRATOR, stage="names", message=str(exc))
        return False
    return True


def inject_run_start(
    run_id: str, exp: Experiment, ds: str | None, run_key: str, ledger: Ledger, scopes: Scopes
) -> bool:
    """Apply the faults that act on stored data or through hooks before the run, and check the
    ones that land after their producing step against the guards; False if one could not be
    applied or is refused (recorded as an ``error``, nothing touched). Also the run start of
    tag-launched runs (:mod:`.executor`)."""
    from mlchaos_orchestration.core.control import inject, seed_for
    from mlchaos_orchestration.dagster.compute import stored_at
    from mlchaos_orchestration.dagster.inmemory import acts_on_load

    for entry in exp.faults:
        if acts_on_load(entry) or (entry.fault.family == "data" and entry.target is None):
            continue  # applied by the IO manager as the data is loaded (or nowhere to act)
        later = stored_at(entry) and bool(scopes.producers(entry.at))
        try:
            inject(
                run_id,
                exp,
                entry,
                seed=seed_for(exp.seed, run_key),
                ds=ds,
                ledger=ledger,
                source=ORCHESTRATOR,
                dry_run=later,  # lands after its producer (compute wrapper): guard it now
            )
        except Exception as exc:  # noqa: BLE001 - safety refusals and apply errors alike
            ledger.record(
                run_id,
                "error",
                source=entry.name,
                stage="inject",
                message=f"{type(exc).__name__}: {str(exc)[:300]}",
            )
            return False
    return True


def _execute(
    defs: dg.Definitions,
    job_name: str | None,
    instance: dg.DagsterInstance,
    partition_key: str | None,
    dagster_run_id: str,
    tags: dict[str, str],
    asset_selection: Sequence[dg.AssetKey] | None = None,
) -> dg.ExecuteInProcessResult:
    if job_name:
        job = defs.resolve_job_def(job_name)
    else:
        job = defs.resolve_implicit_global_asset_job_def()
        asset_selection = asset_selection or pipeline_assets(defs)
    return job.execute_in_process(
        instance=instance,
        partition_key=partition_key,
        run_id=dagster_run_id,
        tags=tags,
        raise_on_error=False,
        asset_selection=list(asset_selection) if asset_selection else None,
    )


def pipeline_assets(defs: dg.Definitions) -> list[dg.AssetKey] | None:
    """The materializable assets of ``defs`` without the resilience assets; None (everything)
    when there is no resilience asset."""
    graph = defs.resolve_asset_graph()
    keys = graph.materializable_asset_keys
    kept = [k for k in keys if TAG_RESILIENCE_ASSET not in (graph.get(k).tags or {})]
    return sorted(kept) if len(kept) < len(keys) else None


def _observe(
    defs: dg.Definitions,
    exp: Experiment,
    instance: dg.DagsterInstance,
    result: dg.ExecuteInProcessResult,
    run_id: str,
    ledger: Ledger,
    scopes: Scopes,
) -> None:
    from mlchaos_orchestration.dagster.alerting import observe_user_sensors
    from mlchaos_orchestration.dagster.events import translate_run

    translate_run(
        instance,
        result.run_id,
        run_id,
        ledger=ledger,
        gate=exp.gate or meta_value(defs, META_GATE),
        consumer=exp.consumer or meta_value(defs, META_CONSUMER),
        scopes=scopes,
    )
    if not result.success:
        evaluate_alert_sensor(defs, instance, result)
        observe_user_sensors(user_failure_sensors(defs), instance, result.dagster_run, run_id)


def user_failure_sensors(defs: dg.Definitions) -> list[Any]:
    """The user's own run-failure sensors of ``defs`` (ours excluded)."""
    from mlchaos_orchestration.dagster.alerting import is_run_failure_sensor
    from mlchaos_orchestration.dagster.finishing import SUCCESS_SENSOR_NAME

    ours = {meta_value(defs, META_SENSOR) or SENSOR_NAME, SUCCESS_SENSOR_NAME}
    return [s for s in defs.sensors or [] if s.name not in ours and is_run_failure_sensor(s)]


def evaluate_alert_sensor(
    defs: dg.Definitions, instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult
) -> bool:
    """Evaluate the defs' alert sensor for a failed run (what the daemon does); False if the
    Definitions have none."""
    name = meta_value(defs, META_SENSOR) or SENSOR_NAME
    sensor = next((s for s in defs.sensors or [] if s.name == name), None)
    if sensor is None:
        return False
    context = dg.build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()
    sensor(context)
    return True


def meta_value(defs: dg.Definitions, key: str) -> str | None:
    """A string stored in the Definitions' metadata by :func:`~.definitions.with_chaos`."""
    value = (defs.metadata or {}).get(key)
    value = getattr(value, "value", value)
    return str(value) if value else None
