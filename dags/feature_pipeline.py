"""Airflow DAG file of the example pipeline ``feature_pipeline`` (dormant chaos on board).

The DAG itself lives in the package (:mod:`mlchaos_orchestration.examples.dag`), so an installed
wheel carries it too; this file only exposes it to Airflow's DAG processor.
"""

from mlchaos_orchestration.examples.dag import dag  # noqa: F401
