"""Run one chaos experiment against a DAG from the Airflow UI ("Trigger" with the Params form).

build_experiment (validates the form into an experiment and bounds it by the deployment's safety:
bad input, or a target outside the deployment allowlist, fails here in one line, touching nothing)
-> run_target (triggers the target DAG with ``conf.mlchaos`` and waits for it) -> verdict (reads
the target run's verdict from the ledger; red when it is silent / unalerted / an error).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, task

from mlchaos_orchestration.airflow.params import experiment_params

with DAG(
    dag_id="mlchaos_experiment",
    schedule=None,
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    params=experiment_params(),
    render_template_as_native_obj=True,
    tags=["mlchaos"],
    doc_md=__doc__,
) as dag:

    @task
    def build_experiment(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The experiment of the form; raises SpecError / SafetyError (one line) when invalid or
        when it asks for more than the deployment allows."""
        from mlchaos_orchestration.airflow.params import export_example_defaults, form_experiment

        export_example_defaults()
        return form_experiment(dict(params or {}))

    experiment = build_experiment()
    run_target = TriggerDagRunOperator(
        task_id="run_target",
        trigger_dag_id="{{ params.target_dag }}",
        trigger_run_id="mlchaos__{{ run_id }}",
        conf={"mlchaos": {"experiment": experiment, "dry_run": "{{ params.dry_run }}"}},
        wait_for_completion=True,
        poke_interval=10,
        allowed_states=["success", "failed"],
        failed_states=[],
    )

    @task
    def verdict(experiment: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
        """The target run's verdict; fails (red) when it is silent / unalerted / an error."""
        from mlchaos_orchestration.airflow.verdicts import checked_verdict

        return checked_verdict(f"mlchaos__{run_id}", experiment["name"])

    run_target >> verdict(experiment)
