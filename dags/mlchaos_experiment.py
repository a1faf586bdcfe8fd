"""Airflow DAG file of ``mlchaos_experiment``: run one chaos experiment from the trigger form.

The DAG lives in :mod:`mlchaos_orchestration.airflow.experiment_dag`.
"""

from mlchaos_orchestration.airflow.experiment_dag import dag  # noqa: F401
