"""Weekly resilience check of the example pipeline, made by
:func:`~mlchaos_orchestration.airflow.resilience.resilience_dag`: every experiment of
``experiments.yaml`` (the clean control run included) runs against ``feature_pipeline`` one after
the other, then the suite report (journal / JUnit / HTML, with suite id and score trend) is
published to the reports location (``[mlchaos] reports_location``, else
``$MLCHAOS_HOME/reports``), where the Resilience view lists it.
"""

from __future__ import annotations

from pathlib import Path

from mlchaos_orchestration.airflow.resilience import resilience_dag

EXPERIMENTS_FILE = Path(__file__).with_name("experiments.yaml")
TARGET_DAG = "feature_pipeline"

dag = resilience_dag(
    target_dag_id=TARGET_DAG,
    experiments_file=EXPERIMENTS_FILE,
    schedule="@weekly",
    dag_id="mlchaos_resilience_weekly",
    doc_md=__doc__,
)
