"""``add_chaos``: add dormant-by-default chaos tasks to an existing DAG object.

The user's tasks are not edited (only dependencies are added around them):

* ``mlchaos_setup.inject`` (group ``mlchaos_setup``) - begins the chaos run and applies
  environment faults (and data faults that name no later point), just before ``before`` (after
  ``before``'s upstream tasks; before every root task when ``before`` is not given). A plain task,
  not an Airflow setup.
* ``mlchaos_inject_data`` (no group) - applies data faults to stored data just before the
  ``gate`` (after the gate's upstream tasks), when a gate is given and differs from ``before``.
  Data faults whose ``at:`` names another task get their own ``mlchaos_inject_data__<task>``
  just before that task (the ``at:`` points are read from ``experiments_file`` and the default
  experiment at parse time; a run-time ``at:`` with no such point is refused when the run starts).
* ``mlchaos_teardown.restore`` (group ``mlchaos_teardown``) - after every leaf, an Airflow
  teardown without setups (it runs whatever happened upstream): restores byte-exactly and
  computes the verdict;
* ``mlchaos_teardown.verdict`` - after restore, a teardown with ``on_failure_fail_dagrun``:
  fails the run on a bad verdict.

Each group holds tasks that sit at one point of the user's graph, so the graph stays a DAG at the
group level too (the Airflow UI's graph and grid views render).

**Dormant run** (no ``mlchaos`` in ``dag_run.conf``): the inject tasks succeed without touching
anything (a skipped task upstream of the user's tasks would skip them too); restore and verdict
are skipped. Teardowns do not count for the run state, so the run's final state, every user task
state and the DAG-level callbacks are those of the same DAG without ``add_chaos``.

**Chaos run**, final state: *failed* when a user task failed, OR the verdict task failed (the
verdict is in ``fail_on``, or there is no verdict), OR an inject task failed (e.g. a refused
experiment: the user's tasks downstream end ``upstream_failed``; restore still runs). Otherwise
*success*. Side effect: when the verdict (or inject) task is the last failure, the DAG-level
``on_failure_callback`` gets that chaos task as its context ``ti``.

The wiring depends only on the arguments (and the experiments file), so it is identical at
every parse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mlchaos_orchestration.airflow.operators import (
    FAIL_ON,
    ChaosInjectOperator,
    RestoreOperator,
    VerdictOperator,
)
from mlchaos_orchestration.airflow.runtime import (
    DATA_TASK,
    SETUP_GROUP,
    TEARDOWN_GROUP,
    data_task_id,
    default_experiment,
)
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
    """Add the chaos tasks to ``dag``; return the ``mlchaos_teardown`` task group.

    ``fault`` + ``params`` (e.g. ``fault="nulls", columns=["amount"], fraction=0.2``) or
    ``experiment`` (a name in ``experiments_file``, or a mapping) is the default experiment of a
    chaos run; a run's ``dag_run.conf["mlchaos"]`` may name another. ``data_target`` is where data
    faults without a ``target`` act (``{ds}`` = run date). ``alert`` (e.g.
    :class:`MlchaosWebhookNotifier`) is appended to every user task's failure callbacks, keeping
    the existing ones. ``safety`` (ttl_s, allowed_targets, ...) is part of the deployment: it goes
    into the ``fault=`` experiment and bounds experiments given at run time.
    Raises :class:`ConfigError` for unknown task ids or a DAG that already has chaos tasks.
    """
    from airflow.sdk import TaskGroup

    if params and not fault:
        raise ConfigError(f"add_chaos: {', '.join(sorted(params))} given without fault=")
    if fault and experiment is not None:
        raise ConfigError("add_chaos: give fault= or experiment=, not both")
    if f"{SETUP_GROUP}.inject" in dag.task_dict:
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
    data_default = gate if "gate" in named and gate != before else None
    points = _at_points(dag, experiment, experiments_file, before)
    if data_default:
        points.add(data_default)
    defaults = {
        k: v
        for k, v in {
            "experiment": experiment,
            "experiments_file": experiments_file,
            "gate": gate,
            "consumer": consumer,
            "before": before,
            "data_target": data_target,
            "safety": safety,
            "data_default": data_default,
            "inject_at": sorted(points),
            "roots": sorted(t.task_id for t in user if not t.upstream_list),
        }.items()
        if v is not None
    }
    # no user callbacks (default_args) on chaos tasks: their failures are not pipeline alerts
    common = {
        "dag": dag,
        "mlchaos_defaults": defaults,
        "retries": 0,
        "on_failure_callback": None,
        "on_success_callback": None,
        "on_retry_callback": None,
    }
    with TaskGroup(SETUP_GROUP, dag=dag, tooltip="mlchaos: dormant unless conf.mlchaos") as setup:
        inject = ChaosInjectOperator(task_id="inject", stage="all", task_group=setup, **common)
    roots = [t for t in user if not t.upstream_list]
    _insert_before(inject, named.get("before"), roots)
    injectors = [inject]
    for point in sorted(points, key=lambda p: (p != data_default, p)):
        task_id = DATA_TASK if point == data_default else data_task_id(point)
        if point != data_default and not data_default and len(points) == 1:
            task_id = DATA_TASK
        op = ChaosInjectOperator(task_id=task_id, stage="data", at=point, **common)
        _insert_before(op, dag.task_dict[point], [])
        if point not in inject.get_flat_relative_ids(upstream=True):
            inject >> op  # the run has begun before any data fault (no cycle possible here)
        injectors.append(op)
    with TaskGroup(TEARDOWN_GROUP, dag=dag, tooltip="mlchaos: restore + verdict") as teardown:
        restore = RestoreOperator(task_id="restore", task_group=teardown, **common)
        verdict = VerdictOperator(task_id="verdict", fail_on=fail_on, task_group=teardown, **common)
    for leaf in [t for t in user if not t.downstream_list] + injectors:
        leaf >> restore
    restore >> verdict
    # teardowns do not count for the run state: a dormant run ends exactly as without chaos.
    # restore has no setups (runs like all_done, even when inject failed); only the verdict may
    # fail the run. as_teardown() resets the trigger rule, so it is called last.
    restore.as_teardown()
    verdict.as_teardown(on_failure_fail_dagrun=True)
    if alert is not None:
        for task in user:
            task.on_failure_callback = [*_callbacks(task.on_failure_callback), alert]
    from mlchaos_orchestration.airflow.params import remember_chaos_dag

    remember_chaos_dag(dag.dag_id)  # the trigger form's suggestions
    return teardown


def _task(dag: Any, task_id: str, role: str) -> Any:
    task = dag.task_dict.get(task_id)
    if task is None:
        raise ConfigError(f"add_chaos: {role}={task_id!r} is not a task of DAG {dag.dag_id!r}")
    return task


def _at_points(
    dag: Any, experiment: Any, experiments_file: str | None, before: str | None
) -> set[str]:
    """Tasks named by data faults' ``at:`` (default experiment + the DAG's experiments file)
    that need their own inject task (``before`` is served by ``mlchaos_setup.inject``)."""
    found: set[str] = set()
    sources: list[Any] = []
    if isinstance(experiment, dict):
        sources.append(experiment)
    if experiments_file and Path(experiments_file).is_file():
        import yaml

        raw = yaml.safe_load(Path(experiments_file).read_text(encoding="utf-8")) or {}
        sources.extend(e for e in raw.get("experiments") or [] if isinstance(e, dict))
    for exp in sources:
        for entry in exp.get("faults") or []:
            at = entry.get("at") if isinstance(entry, dict) else None
            if isinstance(at, str) and at and at != before:
                found.add(at)
    unknown = sorted(p for p in found if p not in dag.task_dict)
    if unknown:
        raise ConfigError(
            f"add_chaos: at: {unknown[0]!r} (in {experiments_file or 'the experiment'}) "
            f"is not a task of DAG {dag.dag_id!r}"
        )
    return found


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
