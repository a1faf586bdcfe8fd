"""Weekly resilience check of the example pipeline: every experiment of ``experiments.yaml``
(the clean control run included) is run against ``feature_pipeline`` one after the other, then
the verdicts are written to ``$MLCHAOS_HOME/reports/weekly/<ds>.json``.

The matrix is read from the YAML file at parse time (names only, no validation), so the task
list is deterministic for a given file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, task

from mlchaos_orchestration.airflow.verdicts import matrix

EXPERIMENTS_FILE = Path(__file__).with_name("experiments.yaml")
TARGET_DAG = "feature_pipeline"
MATRIX = matrix(EXPERIMENTS_FILE)


def run_key(experiment: str, run_id: str) -> str:
    """Run id of the triggered target run of ``experiment`` for weekly run ``run_id``."""
    return f"mlchaos_weekly__{experiment}__{run_id}"


with DAG(
    dag_id="mlchaos_resilience_weekly",
    schedule="@weekly",
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["mlchaos"],
    doc_md=__doc__,
) as dag:
    previous = None
    for name, _expect in MATRIX:
        trigger = TriggerDagRunOperator(
            task_id=f"run_{name.replace('-', '_').replace('.', '_')}",
            trigger_dag_id=TARGET_DAG,
            trigger_run_id=f"mlchaos_weekly__{name}__{{{{ run_id }}}}",
            logical_date=None,  # one logical date per DAG: the target runs on its due date
            conf={"mlchaos": {"experiment": name, "experiments_file": str(EXPERIMENTS_FILE)}},
            wait_for_completion=True,
            poke_interval=15,
            allowed_states=["success", "failed"],
            failed_states=[],
        )
        if previous is not None:
            previous >> trigger
        previous = trigger

    @task(trigger_rule="all_done")
    def write_report(ds: str | None = None, run_id: str | None = None) -> str:
        """Collect the verdicts of this week's runs into a JSON file."""
        from mlchaos_orchestration.airflow.verdicts import collect_verdicts, write_verdicts
        from mlchaos_orchestration.settings import get_settings

        document = collect_verdicts(
            [(n, run_key(n, str(run_id))) for n, _ in MATRIX],
            expected={n: e for n, e in MATRIX if e},
        )
        path = get_settings().data_dir / "reports" / "weekly" / f"{ds}.json"
        return str(write_verdicts(path, document))

    report: Any = write_report()
    if previous is not None:
        previous >> report
