"""Run notes: the verdict of a chaos run, and links both ways, on the Airflow run pages.

A task cannot set its own DAG run's note in Airflow 3 (the Task SDK / execution API has no such
call), so this listener does it where the DAG run state changes: in the scheduler (or in the API
server when someone marks a run, or in ``dag.test()``), with the ORM session that changes the
state, so the note is committed together with the new state.

* a chaos run of a user DAG (``mlchaos`` in its conf): when it starts, "verdict pending" and a
  link to the ``mlchaos_experiment`` run that started it; when it ends, the verdict and its reason
  from the ledger (or, for a dry run, what would have been touched);
* an ``mlchaos_experiment`` run, when it ends: the verdict and a link to the target run, or the
  one-line reason the form was refused.

A note someone wrote by hand (not starting with ``**mlchaos**``) is never overwritten. It never
raises into Airflow (a failure is logged).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

EXPERIMENT_DAG = "mlchaos_experiment"
RUN_PREFIX = "mlchaos__"  # mlchaos_orchestration.airflow.experiment_dag.RUN_PREFIX
REFUSED_KEY = "mlchaos_refused"  # ... .experiment_dag.REFUSED_KEY
BUILD_TASK = "build_experiment"


def run_url(dag_id: str, run_id: str) -> str:
    """The Airflow UI page of a DAG run (``[api] base_url`` aware)."""
    from airflow.utils.helpers import build_airflow_dagrun_url

    return build_airflow_dagrun_url(dag_id, quote(run_id, safe=":+"))


def run_link(dag_id: str, run_id: str, label: str) -> str:
    """A markdown link to a DAG run page."""
    return f"[{label}]({run_url(dag_id, run_id)})"


def note_for(dag_run: Any, session: Any, *, finished: bool) -> str | None:
    """The note mlchaos wants on ``dag_run`` now (None: not a run mlchaos annotates)."""
    from mlchaos_orchestration.airflow.verdicts import (
        experiment_note,
        ledger_run_for,
        target_note,
    )

    conf = dag_run.conf or {}
    if dag_run.dag_id == EXPERIMENT_DAG:
        if not finished:
            return None
        refused = _xcom(session, dag_run, BUILD_TASK, REFUSED_KEY)
        target_dag, target_run = str(conf.get("target_dag") or ""), RUN_PREFIX + dag_run.run_id
        if refused or not target_dag:
            return experiment_note(None, refused=refused or "refused: no target DAG")
        if not _run_exists(session, target_dag, target_run):
            return experiment_note(None, refused="the target run never started: see the task logs")
        return experiment_note(
            ledger_run_for(target_dag, target_run),
            target_link=run_link(target_dag, target_run, f"target run of {target_dag}"),
            plan=_plan(session, target_dag, target_run),
        )
    if not isinstance(conf.get("mlchaos"), dict):
        return None
    started_by = dag_run.run_id.removeprefix(RUN_PREFIX)
    link = (
        run_link(EXPERIMENT_DAG, started_by, "experiment run")
        if dag_run.run_id.startswith(RUN_PREFIX)
        else None
    )
    if not finished:
        return target_note(None, experiment_link=link, running=True)
    return target_note(
        ledger_run_for(dag_run.dag_id, dag_run.run_id),
        experiment_link=link,
        plan=_plan(session, dag_run.dag_id, dag_run.run_id),
    )


def _run_exists(session: Any, dag_id: str, run_id: str) -> bool:
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    found = session.scalar(
        select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id).limit(1)
    )
    return found is not None


def _xcom(session: Any, dag_run: Any, task_id: str, key: str) -> Any:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    value = session.scalar(
        select(XComModel.value).where(
            XComModel.dag_id == dag_run.dag_id,
            XComModel.run_id == dag_run.run_id,
            XComModel.task_id == task_id,
            XComModel.key == key,
        )
    )
    return XComModel.deserialize_value(_Row(value)) if value is not None else None


class _Row:
    """What ``XComModel.deserialize_value`` reads (an object with ``.value``)."""

    def __init__(self, value: Any):
        self.value = value


def _plan(session: Any, dag_id: str, run_id: str) -> list[str] | None:
    """What the inject tasks of a dry run said they would apply (None: not a dry run)."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    from mlchaos_orchestration.airflow.runtime import DATA_TASK, SETUP_GROUP

    values = session.scalars(
        select(XComModel.value).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.key == "return_value",
            XComModel.task_id.in_([f"{SETUP_GROUP}.inject", DATA_TASK])
            | XComModel.task_id.like(f"{DATA_TASK}__%"),
        )
    ).all()
    plan: list[str] = []
    for raw in values:
        value = XComModel.deserialize_value(_Row(raw))
        for applied in (value or {}).get("applied") or [] if isinstance(value, dict) else []:
            plan.extend(str(step) for step in applied.get("plan") or [])
    return plan or None


def is_annotated(dag_run: Any) -> bool:
    """Runs mlchaos writes notes on: ``mlchaos_experiment`` runs and chaos runs."""
    conf = getattr(dag_run, "conf", None) or {}
    return dag_run.dag_id == EXPERIMENT_DAG or isinstance(conf.get("mlchaos"), dict)


def annotate(dag_run: Any, *, finished: bool) -> None:
    """Set the mlchaos note on ``dag_run`` (in its own ORM session; committed with the state)."""
    from sqlalchemy.orm import object_session

    from mlchaos_orchestration.airflow.verdicts import NOTE_MARK

    if not is_annotated(dag_run):
        return  # every other DAG run: not even its note is loaded
    session = object_session(dag_run)
    if session is None:
        return
    current = dag_run.note
    if current and not str(current).startswith(NOTE_MARK):
        return  # the user's own note
    note = note_for(dag_run, session, finished=finished)
    if note and note != current:
        dag_run.note = note


def _guarded(dag_run: Any, finished: bool) -> None:
    try:
        annotate(dag_run, finished=finished)
    except Exception as exc:  # noqa: BLE001 - a listener must never break the scheduler
        log.warning("mlchaos could not annotate run %s: %s", getattr(dag_run, "run_id", "?"), exc)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    """A chaos run starts: note "running" + the link to its experiment run."""
    _guarded(dag_run, finished=False)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    """A run ended: its verdict note."""
    _guarded(dag_run, finished=True)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    """A run ended: its verdict note."""
    _guarded(dag_run, finished=True)
