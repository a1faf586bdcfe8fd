"""Weekly resilience of any DAG: :func:`resilience_dag` builds a DAG that triggers the target DAG
once per experiment of a YAML file (the control run included), one after the other, waits for
each run, then writes the full suite report (``journal.json`` / ``junit.xml`` / ``report.html``,
one suite id in the ledger, the score trend of this target) and publishes it to the reports
location (a folder or ``s3://bucket/prefix``) that the Resilience view lists.

The target DAG must carry ``add_chaos``; each triggered run asks for its experiment through
``conf["mlchaos"] = {"experiment": name, "experiments_file": path, "suite_id": id}``. The file is
read at parse time for experiment names only (YAML, no validation), so a DAG file using the
factory stays cheap to parse (no pandas / GX imports)::

    from mlchaos_orchestration.airflow.resilience import resilience_dag

    dag = resilience_dag(target_dag_id="features", experiments_file="/opt/chaos/experiments.yaml")
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: the run id of a triggered target run: ``mlchaos_weekly__<experiment>__<weekly run id>``
RUN_PREFIX = "mlchaos_weekly"
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def run_key(experiment: str, run_id: str) -> str:
    """Run id of the target run of ``experiment`` triggered by weekly run ``run_id``."""
    return f"{RUN_PREFIX}__{experiment}__{run_id}"


def suite_id_for(dag_id: str, run_id: str, when: dt.datetime | None) -> str:
    """The ledger suite id of one weekly run (same shape as ``mlchaos suite``'s ids, stable for
    the run: every task of the run computes the same one)."""
    stamp = (when or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%d-%H%M%S-")
    return stamp + hashlib.sha256(f"{dag_id}\x00{run_id}".encode()).hexdigest()[:6]


def _task_id(experiment: str) -> str:
    return "run_" + re.sub(r"[^A-Za-z0-9_]", "_", experiment)


def resilience_dag(
    *,
    target_dag_id: str,
    experiments_file: str | Path,
    schedule: Any = "@weekly",
    dag_id: str | None = None,
    reports_location: str | None = None,
    start_date: dt.datetime = START_DATE,
    poke_interval: int = 15,
    fail_on: Iterable[str] = (),
    tags: Iterable[str] = ("mlchaos",),
    **dag_kwargs: Any,
) -> Any:
    """A DAG (default id ``mlchaos_resilience__<target>``) running every experiment of
    ``experiments_file`` against ``target_dag_id`` on ``schedule``, then publishing the report.

    ``reports_location``: a folder or ``s3://bucket/prefix`` (default: the ``reports_location``
    setting, else ``$MLCHAOS_HOME/reports``). ``fail_on``: verdicts that make the report task
    fail after publishing (e.g. ``{"silent", "unalerted"}``); by default the run succeeds
    whatever the verdicts. Other keywords go to ``DAG(...)``."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.sdk import DAG, task

    from mlchaos_orchestration.airflow.verdicts import matrix

    file = str(Path(experiments_file).resolve())
    names = [name for name, _expect in matrix(file)]
    dag_id = dag_id or f"mlchaos_resilience__{target_dag_id}"
    fail_on = sorted(set(fail_on))
    doc = (
        f"mlchaos: every experiment of `{file}` against DAG `{target_dag_id}`, one after the "
        "other, then the suite report in the reports location (Resilience view)."
    )
    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=start_date,
        catchup=dag_kwargs.pop("catchup", False),
        max_active_runs=dag_kwargs.pop("max_active_runs", 1),
        tags=list(tags),
        doc_md=dag_kwargs.pop("doc_md", doc),
        user_defined_macros={"mlchaos_suite_id": suite_id_for},
        **dag_kwargs,
    ) as dag:
        suite_id = "{{ mlchaos_suite_id(dag.dag_id, run_id, dag_run.run_after) }}"
        previous = None
        for name in names:
            trigger = TriggerDagRunOperator(
                task_id=_task_id(name),
                trigger_dag_id=target_dag_id,
                trigger_run_id=run_key(name, "{{ run_id }}"),
                conf={
                    "mlchaos": {"experiment": name, "experiments_file": file, "suite_id": suite_id}
                },
                wait_for_completion=True,
                poke_interval=poke_interval,
                # a caught fault fails the target run: that is a result, not a failed trigger
                allowed_states=["success", "failed"],
                failed_states=[],
                openlineage_inject_parent_info=False,
                trigger_rule="all_done",  # a broken trigger must not skip the others
            )
            if previous is not None:
                previous >> trigger
            previous = trigger

        @task(task_id="report", trigger_rule="all_done")
        def report(dag_run: Any = None, run_id: str | None = None) -> dict[str, Any]:
            """Build the suite's journal / JUnit / HTML and publish them."""
            published = publish_suite(
                suite_id=suite_id_for(dag_id, str(run_id), getattr(dag_run, "run_after", None)),
                target_dag_id=target_dag_id,
                experiments_file=file,
                runs={name: run_key(name, str(run_id)) for name in names},
                location=reports_location,
                meta={"weekly": {"dag_id": dag_id, "run_id": str(run_id)}},
            )
            bad = {k: v for k, v in published["summary"]["verdicts"].items() if k in fail_on and v}
            if bad:
                from mlchaos_orchestration.airflow.verdicts import BadVerdict

                raise BadVerdict(f"{published['url']}: verdicts {bad} are in fail_on {fail_on}")
            return published

        done: Any = report()
        if previous is not None:
            previous >> done
    return dag


def publish_suite(
    *,
    suite_id: str,
    target_dag_id: str,
    experiments_file: str,
    runs: dict[str, str],
    location: str | None = None,
    meta: dict[str, Any] | None = None,
    ledger: Any = None,
) -> dict[str, Any]:
    """Report the suite ``suite_id`` of target runs ``runs`` (experiment -> Airflow run id) and
    publish it; an experiment whose run left no verdict gets an ``error`` row first. Returns
    ``{"url", "name", "suite_id", "summary", ...}`` (the published record, JSON-able)."""
    import tempfile
    from dataclasses import asdict

    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.reporting.location import ReportsLocation, reports_location
    from mlchaos_orchestration.reporting.report import build_journal, write_report
    from mlchaos_orchestration.settings import get_settings

    settings = get_settings()
    ledger = ledger or Ledger(settings.ledger_url)
    missing = record_missing(ledger, suite_id, target_dag_id, runs)
    journal = build_journal(
        ledger,
        suite_id,
        title=f"weekly resilience of {target_dag_id}",
        meta={
            "orchestrators": ["airflow"],
            "targets": [
                {
                    "kind": "airflow",
                    "ref": target_dag_id,
                    "label": "airflow",
                    "describe": f"Airflow DAG {target_dag_id}",
                }
            ],
            "experiments_file": experiments_file,
            "target_runs": runs,
            "missing_verdicts": len(missing),
            "crashed": bool(missing),
            **(meta or {}),
        },
    )
    journal["history"] = target_history(ledger, target_dag_id, exclude=suite_id)
    where = reports_location(location) or ReportsLocation(str(settings.data_dir / "reports"))
    if where.root is not None:  # a folder: write in place (``latest`` points at it)
        published = where.publish(write_report(journal, where.root))
    else:
        with tempfile.TemporaryDirectory(prefix="mlchaos-report-") as tmp:
            published = where.publish(write_report(journal, tmp))
    return {"url": where.url, **asdict(published)}


def record_missing(
    ledger: Any, suite_id: str, target_dag_id: str, runs: dict[str, str]
) -> list[str]:
    """Give every experiment whose target run recorded no verdict an ``error`` verdict in the
    suite (its faults restored first if it started); returns their names."""
    from mlchaos_orchestration.core.control import run_id_for
    from mlchaos_orchestration.core.session import restore_all

    missing = []
    for experiment, key in runs.items():
        run_id = run_id_for(key, experiment)
        run = ledger.get_run(run_id)
        if run is not None and run.get("verdict"):
            continue
        if run is None:
            ledger.start_run(
                experiment,
                pipeline=target_dag_id,
                orchestrator="airflow",
                run_id=run_id,
                suite_id=suite_id,
                meta={"synthesized": True, "airflow_run_id": key},
            )
            reason = f"no verdict: target run {key} never started its chaos tasks"
        else:
            restore_all(ledger, run_id=run_id, reason="no verdict")
            reason = f"no verdict: target run {key} ended without judging"
        ledger.record(run_id, "error", source="weekly", message=reason)
        ledger.set_verdict(run_id, {"verdict": "error", "reason": reason})
        ledger.end_run(run_id, "crashed")
        missing.append(experiment)
    return missing


def target_history(
    ledger: Any, pipeline: str, *, exclude: str | None = None
) -> list[dict[str, Any]]:
    """Resilience score of earlier suites that ran on ``pipeline`` (oldest first)."""
    from mlchaos_orchestration.reporting.report import score_history

    suites = {
        r["suite_id"]
        for r in ledger.list_runs(limit=50_000)
        if r.get("suite_id") and r.get("pipeline") == pipeline
    }
    return [h for h in score_history(ledger, exclude=exclude) if h["suite_id"] in suites]
