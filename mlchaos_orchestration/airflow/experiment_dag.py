"""Run one chaos experiment against a DAG from the Airflow UI ("Trigger" with the Params form).

build_experiment (validates the form into an experiment, checks that the target DAG exists and
carries ``add_chaos`` and bounds the experiment by the deployment's safety: bad input fails here
in one line, touching nothing) -> run_target (triggers the target DAG as run
``mlchaos__<this run id>`` with ``conf.mlchaos`` and waits for it) -> verdict (reads the target
run's verdict from the ledger; red when it is silent / unalerted / an error; its log ends with
one human line). Both runs get a note with the verdict and a link to the other run
(:mod:`mlchaos_orchestration.airflow.ui.run_notes`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, task

from mlchaos_orchestration.airflow.params import experiment_params

#: the prefix of every target run this DAG triggers (chaos runs stand out in the runs list)
RUN_PREFIX = "mlchaos__"
#: XCom key under which build_experiment leaves its one-line refusal (shown in the run note)
REFUSED_KEY = "mlchaos_refused"

with DAG(
    dag_id="mlchaos_experiment",
    schedule=None,
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    params=experiment_params(),
    render_template_as_native_obj=True,
    tags=["mlchaos"],
    doc_md=__doc__,
    default_args={"retries": 0},
) as dag:

    @task
    def build_experiment(params: dict[str, Any] | None = None, ti: Any = None) -> dict[str, Any]:
        """The experiment of the form; fails in one line (kept as XCom ``mlchaos_refused`` for
        the run note) when the form is invalid, the target DAG has no chaos tasks, or the
        experiment asks for more than the deployment allows."""
        from airflow.exceptions import AirflowFailException

        from mlchaos_orchestration.airflow.params import (
            check_fields,
            check_target_dag,
            export_example_defaults,
            form_experiment,
            scan_chaos_dags,
        )
        from mlchaos_orchestration.errors import MlchaosError

        form = dict(params or {})
        try:
            check_fields(form)
            check_target_dag(str(form["target_dag"]), scan_chaos_dags())
            export_example_defaults()
            return form_experiment(form)
        except MlchaosError as exc:
            line = f"mlchaos: refused, nothing touched: {exc}"
            if ti is not None:
                ti.xcom_push(key=REFUSED_KEY, value=line)
            raise AirflowFailException(line) from None

    experiment = build_experiment()
    run_target = TriggerDagRunOperator(
        task_id="run_target",
        trigger_dag_id="{{ params.target_dag }}",
        trigger_run_id=RUN_PREFIX + "{{ run_id }}",
        conf={"mlchaos": {"experiment": experiment, "dry_run": "{{ params.dry_run }}"}},
        wait_for_completion=True,
        poke_interval=3,
        allowed_states=["success", "failed"],
        failed_states=[],
    )

    @task
    def verdict(
        experiment: dict[str, Any], params: dict[str, Any] | None = None, run_id: str | None = None
    ) -> dict[str, Any]:
        """The target run's verdict; fails (red) when it is silent / unalerted / an error.
        The last log line says it in words."""
        import logging

        from mlchaos_orchestration.airflow.verdicts import BadVerdict, checked_verdict

        log = logging.getLogger("mlchaos")
        target = f"{(params or {}).get('target_dag')}/{RUN_PREFIX}{run_id}"
        try:
            found = checked_verdict(f"{RUN_PREFIX}{run_id}", experiment["name"])
        except BadVerdict as exc:
            log.error("mlchaos verdict of target run %s: %s", target, exc)
            raise
        log.info(
            "mlchaos verdict of target run %s: %s - %s",
            target,
            found.get("verdict"),
            found.get("reason"),
        )
        return found

    run_target >> verdict(experiment)
