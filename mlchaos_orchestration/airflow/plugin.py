"""Airflow plugin entry point: the mlchaos listener and the Resilience view."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mlchaos_orchestration.airflow import listener
from mlchaos_orchestration.airflow.ui import resilience_app, resilience_view, run_notes


class MlchaosPlugin(AirflowPlugin):
    """Adds the listener that records gate/consumer events and installs connector hooks, the one
    that writes verdict notes on chaos runs (:mod:`.ui.run_notes`), and the "Resilience" view
    (a FastAPI app behind Airflow's auth, under Browse)."""

    name = "mlchaos"
    listeners = [listener, run_notes]
    fastapi_apps = [resilience_app()]
    external_views = [resilience_view()]
