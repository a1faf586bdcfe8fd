"""``with_chaos``: add chaos to an existing ``Definitions`` without editing its assets.

Every IO manager resource is replaced by a :class:`~.io_manager.ChaosIOManager` delegating to the
original (kept under ``<key>__mlchaos_inner``); ``io_manager`` is added around Dagster's default
filesystem IO manager when the Definitions set none. The alert sensor (run failure) and a
run-success sensor that finishes runs launched by tag are added, both running by default. Gate
and consumer defaults are kept in the Definitions' metadata for
:func:`~.runner.run_experiment_dagster`. Everything stays dormant unless a run carries chaos tags.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlchaos_orchestration.dagster.alerting import SENSOR_NAME, chaos_alert_sensor
from mlchaos_orchestration.dagster.finishing import SUCCESS_SENSOR_NAME, chaos_success_sensor
from mlchaos_orchestration.dagster.io_manager import INNER_SUFFIX, chaos_io_manager, is_io_manager
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
) -> dg.Definitions:
    """A copy of ``defs`` with chaos IO managers, the alert sensor and chaos defaults."""
    scopes = Scopes(
        checks={
            key.name: key.asset_key.to_user_string()
            for key in defs.resolve_asset_graph().asset_check_keys
        }
    )
    resources: dict[str, Any] = dict(defs.resources or {})
    if "io_manager" not in resources:
        resources["io_manager"] = dg.FilesystemIOManager()
    for key in [k for k, v in resources.items() if is_io_manager(v)]:
        inner = key + INNER_SUFFIX
        resources[inner] = resources[key]
        resources[key] = chaos_io_manager(inner, scopes, experiments_file, pipeline)
    sensors = list(defs.sensors or [])
    names = {s.name for s in sensors}
    if sensor_name not in names:
        sensors.append(
            chaos_alert_sensor(
                name=sensor_name, webhook_url_env=webhook_url_env, gate=gate, consumer=consumer
            )
        )
    if SUCCESS_SENSOR_NAME not in names:
        sensors.append(chaos_success_sensor(gate=gate, consumer=consumer))
    metadata = {**(defs.metadata or {}), META_SENSOR: sensor_name}
    for key, value in ((META_GATE, gate), (META_CONSUMER, consumer)):
        if value:
            metadata[key] = value
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        schedules=defs.schedules,
        sensors=sensors,
        jobs=defs.jobs,
        resources=resources,
        executor=defs.executor,
        loggers=defs.loggers,
        metadata=metadata,
    )
