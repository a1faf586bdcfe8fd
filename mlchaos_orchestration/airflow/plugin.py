"""Airflow plugin entry point: registers the mlchaos listener (see :mod:`.listener`)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mlchaos_orchestration.airflow import listener


class MlchaosPlugin(AirflowPlugin):
    """Adds the listener that records gate/consumer events and installs connector hooks."""

    name = "mlchaos"
    listeners = [listener]
