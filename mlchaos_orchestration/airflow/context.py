"""Reading an Airflow task context: the run's conf, run key, date and the DAG's chaos defaults."""

from __future__ import annotations

from typing import Any

from mlchaos_orchestration.airflow.runtime import ChaosRun, resolve


def dag_defaults(dag: Any) -> dict[str, Any]:
    """Chaos defaults carried by the DAG's chaos tasks (set by ``add_chaos``), else ``{}``."""
    for task in getattr(dag, "tasks", None) or []:
        defaults = getattr(task, "mlchaos_defaults", None)
        if defaults:
            return dict(defaults)
    return {}


def run_date(context: Any) -> str | None:
    """``YYYY-MM-DD`` of the run: its logical date, else the date it was due to run."""
    ds = context.get("ds")
    if ds:
        return str(ds)
    dag_run = context.get("dag_run")
    when = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
    return when.strftime("%Y-%m-%d") if when is not None else None


def chaos_run(context: Any, defaults: dict[str, Any] | None = None) -> ChaosRun | None:
    """The chaos run of this task's DAG run, or None when the run is dormant.

    Raises SpecError / SafetyError (one line) for a request the DAG refuses: an experiment that
    widens the deployment's safety, or a gate / consumer / ``at:`` that is not a task of the DAG.
    """
    dag_run = context["dag_run"]
    dag = context.get("dag")
    if defaults is None:
        defaults = dag_defaults(dag)
    task_ids = getattr(dag, "task_ids", None) if dag is not None else None
    return resolve(
        getattr(dag_run, "conf", None) or {},
        str(dag_run.run_id),
        defaults,
        pipeline=str(getattr(dag_run, "dag_id", "") or getattr(dag, "dag_id", "") or ""),
        task_ids=list(task_ids) if task_ids is not None else None,
    )
