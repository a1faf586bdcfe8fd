"""``add_chaos``: add a dormant-by-default ``mlchaos`` task group to an existing DAG object.

The user's tasks are not edited (only dependencies are added around them):

* ``mlchaos.inject`` - begins the chaos run and applies environment faults, just before ``before``
  (after ``before``'s upstream tasks; before every root task when ``before`` is not given);
* ``mlchaos.inject_data`` - applies data faults to stored data just before the ``gate`` (after
  the gate's upstream tasks), when a gate is given and differs from ``before``;
* ``mlchaos.restore`` - after every leaf, trigger rule ``all_done``: restores byte-exactly and
  computes the verdict;
* ``mlchaos.verdict`` - after restore: fails on a bad verdict.

On a dormant run (no ``mlchaos`` in ``dag_run.conf``) the inject tasks succeed without touching
anything (a skipped task upstream of the user's tasks would skip them too) and restore/verdict
are skipped. The wiring depends only on the arguments, so it is identical at every parse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mlchaos_orchestration.airflow.operators import (
    FAIL_ON,
    ChaosInjectOperator,
    RestoreOperator,
    VerdictOperator,
)
from mlchaos_orchestration.airflow.runtime import CHAOS_GROUP, default_experiment
from mlchaos_orchestration.errors import ConfigError


def add_chaos(
    dag: Any,
    *,
    experiment: str | dict[str, Any] | None = None,
    experiments_file: str | None = None,
    fault: str | None = None,
    before: str | None = None,
    gate: str | None = None,
    consumer: str | None = None,
    data_target: str | dict[str, Any] | None = None,
    alert: Callable[..., Any] | None = None,
    fail_on: Iterable[str] = FAIL_ON,
    safety: dict[str, Any] | None = None,
    **params: Any,
) -> Any:
    """Add the ``mlchaos`` task group to ``dag`` and return it.

    ``fault`` + ``params`` (e.g. ``fault="nulls", columns=["amount"], fraction=0.2``) or
    ``experiment`` (a name in ``experiments_file``, or a mapping) is the default experiment of a
    chaos run; a run's ``dag_run.conf["mlchaos"]`` may name another. ``data_target`` is where data
    faults without a ``target`` act (``{ds}`` = run date). ``alert`` (e.g.
    :class:`MlchaosWebhookNotifier`) is appended to every user task's failure callbacks, keeping
    the existing ones. ``safety`` (ttl_s, allowed_targets, ...) goes into the ``fault=`` experiment.
    Raises :class:`ConfigError` for unknown task ids or a DAG that already has chaos tasks.
    """
    from airflow.sdk import TaskGroup

    if params and not fault:
        raise ConfigError(f"add_chaos: {', '.join(sorted(params))} given without fault=")
    if safety is not None and not fault:
        raise ConfigError("add_chaos: safety= applies to a fault= experiment only")
    if fault and experiment is not None:
        raise ConfigError("add_chaos: give fault= or experiment=, not both")
    if f"{CHAOS_GROUP}.inject" in dag.task_dict:
        raise ConfigError(f"add_chaos: DAG {dag.dag_id!r} already has chaos tasks")
    user = list(dag.tasks)
    named = {
        k: _task(dag, v, k)
        for k, v in (("before", before), ("gate", gate), ("consumer", consumer))
        if v
    }
    if fault:
        experiment = default_experiment(
            f"{dag.dag_id}.{fault}", fault, params, gate=gate, consumer=consumer, safety=safety
        )
    defaults = {
        k: v
        for k, v in {
            "experiment": experiment,
            "experiments_file": experiments_file,
            "gate": gate,
            "consumer": consumer,
            "data_target": data_target,
        }.items()
        if v is not None
    }
    split = "gate" in named and gate != before
    with TaskGroup(CHAOS_GROUP, dag=dag, tooltip="mlchaos: dormant unless conf.mlchaos") as group:
        # no user callbacks (default_args) on chaos tasks: their failures are not pipeline alerts
        common = {
            "dag": dag,
            "task_group": group,
            "mlchaos_defaults": defaults,
            "retries": 0,
            "on_failure_callback": None,
            "on_success_callback": None,
        }
        inject = ChaosInjectOperator(
            task_id="inject", stage="environment" if split else "all", **common
        )
        injectors = [inject]
        if split:
            injectors.append(ChaosInjectOperator(task_id="inject_data", stage="data", **common))
        restore = RestoreOperator(task_id="restore", **common)
        verdict = VerdictOperator(task_id="verdict", fail_on=fail_on, **common)
    roots = [t for t in user if not t.upstream_list]
    _insert_before(inject, named.get("before"), roots)
    if split:
        _insert_before(injectors[1], named["gate"], [])
    for leaf in [t for t in user if not t.downstream_list] + injectors:
        leaf >> restore
    restore >> verdict
    if alert is not None:
        for task in user:
            task.on_failure_callback = [*_callbacks(task.on_failure_callback), alert]
    return group


def _task(dag: Any, task_id: str, role: str) -> Any:
    task = dag.task_dict.get(task_id)
    if task is None:
        raise ConfigError(f"add_chaos: {role}={task_id!r} is not a task of DAG {dag.dag_id!r}")
    return task


def _insert_before(chaos: Any, task: Any, default_targets: list[Any]) -> None:
    """Run ``chaos`` after ``task``'s upstream tasks and before ``task`` (or the given roots)."""
    if task is None:
        for root in default_targets:
            chaos >> root
        return
    for upstream in list(task.upstream_list):
        upstream >> chaos
    chaos >> task


def _callbacks(existing: Any) -> list[Any]:
    if existing is None:
        return []
    return list(existing) if isinstance(existing, (list, tuple)) else [existing]
