"""Run start and run end of chaos runs launched by tag (UI launchpad, schedule, sensor, daemon).

:func:`~.runner.run_experiment_dagster` applies the run-start faults itself before it executes the
job in process, and restores them when the job is done. A run launched with only the
``mlchaos/experiment`` (or ``mlchaos/experiment_spec``) tag has no such driver, so the
executor of the run does it: :func:`chaos_executor` wraps any executor definition (in-process,
multiprocess, step-delegating) and, in the run worker process, around the inner executor's
``execute``:

* **before any step starts**: expired leases are recovered, the ledger run is begun (or found) and
  every run-start fault of the experiment is applied once for the whole run - stored faults
  without a producing step (outage, replay on stored partitions, drop column ...) and connector
  faults (their hooks follow the lease into every step process, :mod:`.io_manager`) - with the
  same guards, lease and ``fault_applied`` evidence as the in-process runner; stored faults that
  land after their producer are guard-checked now and applied in the step (:mod:`.compute`). If
  one cannot be applied or is refused, the run fails before any step ran (nothing left faulted);
* **once every step has finished** (success, failure or termination): every live lease of the run
  is restored, so the next queued run starts on restored data. The run-status sensors still
  translate the event log and compute the verdict (:mod:`.finishing`, :mod:`.alerting`), and
  remain the safety net (``finish`` restores whatever is still live).

Dormant runs and runs driven by :func:`~.runner.run_experiment_dagster` (tag ``mlchaos/run_id``)
only delegate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg  # noqa: TID253 - imported by .wrap only, Dagster already loaded
from dagster._core.executor.base import Executor  # noqa: TID253

from mlchaos_orchestration.dagster.request import (
    ORCHESTRATOR,
    TAG_RUN_ID,
    ChaosRequest,
    Deployment,
    is_chaos_run,
    resolve,
)

#: executor definitions built here carry their Deployment under this attribute
_MARK = "__mlchaos_deployment__"
PARTITION_TAG = "dagster/partition"


class RunStartError(Exception):
    """A run-start fault of a tag-launched run could not be applied (details in the ledger)."""


class ChaosExecutor(Executor):
    """Delegates to ``inner``; applies / restores the run-start faults of tag-launched runs."""

    def __init__(self, inner: Executor, deployment: Deployment):
        self.inner = inner
        self.deployment = deployment

    @property
    def retries(self) -> Any:
        return self.inner.retries

    @property
    def step_dependency_config(self) -> Any:
        return self.inner.step_dependency_config

    def __getattr__(self, name: str) -> Any:  # anything else an executor exposes
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[dg.DagsterEvent]:
        run = plan_context.dagster_run
        if not is_chaos_run(run.tags) or TAG_RUN_ID in run.tags:
            yield from self.inner.execute(plan_context, execution_plan)
            return
        request = start_tagged_run(run, self.deployment)
        try:
            yield from self.inner.execute(plan_context, execution_plan)
        finally:
            end_tagged_run(request)


def start_tagged_run(run: Any, deployment: Deployment) -> ChaosRequest:
    """Begin the ledger run of a tag-launched run and apply its run-start faults (once, in the run
    worker). Raises RunStartError when one could not be applied (what was applied is restored)."""
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.session import recover, restore_all
    from mlchaos_orchestration.dagster.runner import inject_run_start

    ledger = Ledger()
    recover(ledger)
    request = resolve(run.tags, dagster_run_id=run.run_id, deployment=deployment, ledger=ledger)
    assert request is not None  # a chaos run (checked by the caller)
    ds = str(run.tags.get(PARTITION_TAG) or "")[:10] or None
    scopes = deployment.scopes
    if scopes is None:
        from mlchaos_orchestration.dagster.scope import Scopes

        scopes = Scopes()
    ok = inject_run_start(request.run_id, request.experiment, ds, request.run_key, ledger, scopes)
    if not ok:
        restore_all(ledger, run_id=request.run_id, reason="run start failed")
        raise RunStartError(
            f"mlchaos: a run-start fault of experiment {request.experiment.name!r} could not be "
            f"applied (ledger run {request.run_id}); no step ran"
        )
    return request


def end_tagged_run(request: ChaosRequest) -> None:
    """Every step finished: restore every live lease of the run (the next run sees clean data)."""
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.session import restore_all

    ledger = Ledger()
    try:
        restore_all(ledger, run_id=request.run_id, reason="run ended")
    except Exception as exc:  # noqa: BLE001 - the sensors' finish retries; never mask the run
        ledger.record(
            request.run_id,
            "error",
            source=ORCHESTRATOR,
            stage="restore at run end",
            message=f"{type(exc).__name__}: {str(exc)[:300]}",
        )


def chaos_executor(inner: dg.ExecutorDefinition, deployment: Deployment) -> dg.ExecutorDefinition:
    """``inner`` (same name, config schema and requirements) with chaos run start / run end."""
    if getattr(inner, _MARK, False):
        return inner
    creation_fn = inner.executor_creation_fn
    if creation_fn is None:  # pragma: no cover - every Dagster executor has one
        return inner

    def _create(init_context: Any) -> Executor:
        return ChaosExecutor(creation_fn(init_context), deployment)

    schema: Any = inner.config_schema  # the inner definition's (possibly configured) schema
    wrapped = dg.ExecutorDefinition(
        name=inner.name,
        config_schema=schema,
        executor_creation_fn=_create,
        description=inner.description,
        requirements=inner.get_requirements,
    )
    setattr(wrapped, _MARK, deployment)
    return wrapped


def chaos_executor_for(defs: dg.Definitions, executor_def: dg.ExecutorDefinition) -> Any:
    """``executor_def`` with the chaos run start / run end of ``defs`` (returned by
    :func:`~.wrap.with_chaos`): for a job with its own executor added after ``with_chaos``, e.g.
    ``define_asset_job(..., executor_def=chaos_executor_for(defs, multiprocess_executor))``.
    Raises ValueError when ``defs`` were not wrapped."""
    deployment = getattr(defs.executor, _MARK, None)
    if not isinstance(deployment, Deployment):
        raise ValueError("chaos_executor_for: these Definitions were not wrapped by with_chaos")
    return chaos_executor(executor_def, deployment)


def default_executor(executor: Any) -> dg.ExecutorDefinition:
    """The Definitions' executor as a definition (Dagster's default when None)."""
    from dagster._core.definitions.executor_definition import multi_or_in_process_executor

    if executor is None:
        return multi_or_in_process_executor
    if isinstance(executor, dg.ExecutorDefinition):
        return executor
    return dg.ExecutorDefinition.hardcoded_executor(executor)


def with_chaos_executors(jobs: list[Any], deployment: Deployment) -> list[Any]:
    """``jobs`` with every explicitly set executor wrapped by :func:`chaos_executor` (jobs without
    one use the Definitions' executor, wrapped by :func:`~.wrap.with_chaos`)."""
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )
    from dagster_shared.record import replace

    out = []
    for job in jobs:
        if isinstance(job, UnresolvedAssetJobDefinition) and job.executor_def is not None:
            job = replace(job, executor_def=chaos_executor(job.executor_def, deployment))
        elif isinstance(job, dg.JobDefinition) and job.has_specified_executor:
            job = job.with_executor_def(chaos_executor(job.executor_def, deployment))
        out.append(job)
    return out
