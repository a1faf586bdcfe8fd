"""Airflow DAG file of ``mlchaos_gameday``: the example's serving-side game day, triggered from
the UI. The DAG lives in :mod:`mlchaos_orchestration.airflow.gameday_dag`."""

from mlchaos_orchestration.airflow.gameday_dag import gameday_dag

dag = gameday_dag()
