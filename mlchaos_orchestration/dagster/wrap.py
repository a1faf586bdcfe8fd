"""``with_chaos``: add chaos to an existing ``Definitions`` without editing its assets.

* Every IO manager resource is replaced by a :class:`~.io_manager.ChaosIOManager` delegating to
  the original (kept under ``<key>__mlchaos_inner``); ``io_manager`` is added around Dagster's
  default filesystem IO manager when the Definitions set none.
* Every op-backed asset and asset check is rebuilt with its compute wrapped
  (:mod:`.compute`): stored faults land right after their producing step and the gate's and
  consumer's reads are observed as they start.
* The alert sensor (run failure, chaos runs only) and a run-success sensor that finishes runs
  launched by tag are added, both running by default. The user's own sensors, schedules, jobs,
  loggers, metadata and component tree are kept as they are (the Definitions are copied field by
  field, only ``assets``, ``asset_checks``, ``resources``, ``sensors``, ``metadata`` and the
  executors change).
* An :class:`~.resource.MlchaosResource` (``resource=``, or one already among the Definitions'
  resources) is registered (key ``mlchaos``), so the configuration shows on the resources page;
  its values become the process's ``MLCHAOS_*`` settings and its experiments file / alert
  webhook variable are the defaults of ``experiments_file`` / ``webhook_url_env``.
* The executor (the Definitions' default and every job's own) is wrapped
  (:mod:`.executor`): a run launched by tag applies its run-start faults before its first step and
  restores every fault once its last step finished. Since the wrapped Definitions set an
  executor, ``Definitions.merge`` with another Definitions that sets one is refused by Dagster:
  set the executor before ``with_chaos``.
* Gate and consumer defaults are kept in the Definitions' metadata for
  :func:`~.runner.run_experiment_dagster`; gate / consumer names are checked against the graph.

Everything stays dormant unless a run carries chaos tags (see :mod:`.request`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from mlchaos_orchestration.dagster.alerting import SENSOR_NAME, chaos_alert_sensor
from mlchaos_orchestration.dagster.compute import ComputeHooks, wrap_assets
from mlchaos_orchestration.dagster.executor import (
    chaos_executor,
    default_executor,
    with_chaos_executors,
)
from mlchaos_orchestration.dagster.finishing import SUCCESS_SENSOR_NAME, chaos_success_sensor
from mlchaos_orchestration.dagster.io_manager import INNER_SUFFIX, chaos_io_manager, is_io_manager
from mlchaos_orchestration.dagster.request import Deployment
from mlchaos_orchestration.dagster.resource import RESOURCE_KEY, MlchaosResource, find_resource
from mlchaos_orchestration.dagster.runner import META_CONSUMER, META_GATE, META_SENSOR
from mlchaos_orchestration.dagster.scope import Scopes


def with_chaos(
    defs: dg.Definitions,
    *,
    experiments_file: str | None = None,
    gate: str | None = None,
    consumer: str | None = None,
    webhook_url_env: str | None = None,
    sensor_name: str = SENSOR_NAME,
    pipeline: str = "",
    safety: Any = None,
    resource: MlchaosResource | None = None,
    alert_all_runs: bool = False,
) -> dg.Definitions:
    """A copy of ``defs`` with chaos IO managers, compute wrappers, the alert sensor and chaos
    defaults. The alert sensor posts failed chaos runs only, every failed run with
    ``alert_all_runs``.

    ``safety`` (a :class:`~mlchaos_orchestration.core.safety.SafetySpec` or mapping) is part of
    the deployment: with the experiments file given here and the environment it is the ceiling
    for experiments named at run time (run tags). Raises ``SpecError`` (one line) when ``gate``
    or ``consumer`` is not a check / asset of ``defs``; ConfigError for a resource whose EnvVar
    is unset or whose webhook URL is not an EnvVar."""
    resources: dict[str, Any] = dict(defs.resources or {})
    found = (RESOURCE_KEY, resource) if resource is not None else find_resource(resources)
    if found is not None:
        key, resource = found
        resource.apply()
        resources[key] = resource
        experiments_file = experiments_file or resource.settings_env().get(
            "MLCHAOS_EXPERIMENTS_FILE"
        )
        webhook_url_env = webhook_url_env or resource.webhook_url_env
    scopes = build_scopes(defs)
    scopes.check_names(gate=gate, consumer=consumer, where="with_chaos")
    deployment = Deployment(
        experiments_file=experiments_file,
        safety=tuple(_safety_specs(safety)),
        gate=gate,
        consumer=consumer,
        pipeline=pipeline,
        scopes=scopes,
    )
    hooks = ComputeHooks(deployment)
    assets, wrapped = wrap_assets(defs.assets or [], hooks)
    checks, wrapped_checks = wrap_assets(defs.asset_checks or [], hooks)
    if "io_manager" not in resources:
        resources["io_manager"] = dg.FilesystemIOManager()
    for key in [k for k, v in resources.items() if is_io_manager(v)]:
        inner = key + INNER_SUFFIX
        if inner in resources or key.endswith(INNER_SUFFIX):
            continue  # already wrapped
        resources[inner] = resources[key]
        resources[key] = chaos_io_manager(inner, deployment, wrapped | wrapped_checks)
    sensors = list(defs.sensors or [])
    names = {s.name for s in sensors}
    if sensor_name not in names:
        sensors.append(
            chaos_alert_sensor(
                name=sensor_name,
                webhook_url_env=webhook_url_env,
                gate=gate,
                consumer=consumer,
                scopes=scopes,
                all_runs=alert_all_runs,
            )
        )
    if SUCCESS_SENSOR_NAME not in names:
        sensors.append(chaos_success_sensor(gate=gate, consumer=consumer, scopes=scopes))
    metadata = {**(defs.metadata or {}), META_SENSOR: sensor_name}
    for key, value in ((META_GATE, gate), (META_CONSUMER, consumer)):
        if value:
            metadata[key] = value
    return _copy(
        defs,
        assets=assets,
        asset_checks=checks,
        sensors=sensors,
        resources=resources,
        metadata=metadata,
        executor=chaos_executor(default_executor(defs.executor), deployment),
        jobs=with_chaos_executors(list(defs.jobs or []), deployment),
    )


def _copy(defs: dg.Definitions, **changes: Any) -> dg.Definitions:
    """``defs`` with ``changes``, every other field (executor, loggers, jobs, schedules,
    component tree, ...) kept: Dagster's record ``copy`` goes through the constructor."""
    from dagster._record import copy

    return copy(defs, **changes)


def build_scopes(defs: dg.Definitions) -> Scopes:
    """Check / asset / op names of ``defs``' asset graph."""
    graph = defs.resolve_asset_graph()
    checks: dict[str, str] = {}
    ops: dict[str, str] = {}
    parents: dict[str, tuple[str, ...]] = {}
    assets: set[str] = set()
    for item in graph.assets_defs:
        op_backed = item.is_executable and isinstance(item.node_def, dg.OpDefinition)
        name = item.node_def.name if op_backed else None
        for key in item.keys:
            user = key.to_user_string()
            assets.add(user)
            parents[user] = tuple(sorted(p.to_user_string() for p in graph.get(key).parent_keys))
            if name:
                ops[user] = name
        for check in item.check_keys:
            checks[check.name] = check.asset_key.to_user_string()
            if name:
                ops.setdefault(check.name, name)
        if name:
            ops.setdefault(name, name)
    return Scopes(checks=checks, ops=ops, parents=parents, assets=frozenset(assets))


def _safety_specs(safety: Any) -> list[Any]:
    if safety is None:
        return []
    from mlchaos_orchestration.core.safety import SafetySpec

    if isinstance(safety, SafetySpec):
        return [safety]
    if isinstance(safety, Mapping):
        return [SafetySpec(**dict(safety))]
    return [SafetySpec.model_validate(s) if isinstance(s, Mapping) else s for s in safety]
