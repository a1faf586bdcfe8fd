"""Airflow DAG file of ``mlchaos_resilience_weekly``: the example's weekly resilience matrix.

The DAG lives in :mod:`mlchaos_orchestration.examples.weekly_dag`.
"""

from mlchaos_orchestration.examples.weekly_dag import dag  # noqa: F401
