"""Airflow 3 UI for mlchaos: a "Resilience" view served by an Airflow FastAPI plugin app.

Wire it into an ``AirflowPlugin``::

    fastapi_apps = [resilience_app()]
    external_views = [resilience_view()]

Every endpoint requires an authenticated Airflow user allowed to read DAG runs (Airflow does not
protect plugin apps by itself). Importing this package (and calling these functions) loads
neither FastAPI nor Airflow: the app is built on its first request, in the API server.
"""

from __future__ import annotations

from typing import Any

URL_PREFIX = "/mlchaos"
APP_NAME = "mlchaos resilience"


def resilience_app(url_prefix: str = URL_PREFIX) -> dict[str, Any]:
    """The ``fastapi_apps`` entry: the Resilience app mounted under ``url_prefix``."""
    from mlchaos_orchestration.airflow.ui.asgi import LazyASGIApp

    def build() -> object:
        from mlchaos_orchestration.airflow.ui.app import create_app

        return create_app()

    return {"app": LazyASGIApp(build), "url_prefix": url_prefix, "name": APP_NAME}


def resilience_view(url_prefix: str = URL_PREFIX) -> dict[str, Any]:
    """The ``external_views`` entry: a "Resilience" item under Browse opening the app in its own
    tab (no ``url_route``: Airflow's plugin iframe is sandboxed without top navigation or
    pop-ups, so links to run pages and reports would not open from inside it)."""
    return {
        "name": "Resilience",
        "href": f"{url_prefix}/",
        "destination": "nav",
        "category": "browse",
    }


__all__ = ["APP_NAME", "URL_PREFIX", "resilience_app", "resilience_view"]
