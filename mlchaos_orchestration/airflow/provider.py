"""Airflow provider metadata (entry point ``apache_airflow_provider``): the ``[mlchaos]``
configuration section, so ``airflow config list`` documents it and ``AIRFLOW__MLCHAOS__*`` /
``airflow.cfg`` configure mlchaos like any provider. Imports nothing heavy."""

from __future__ import annotations

from typing import Any

from mlchaos_orchestration import __version__


def _option(description: str, example: str | None, default: str | None) -> dict[str, Any]:
    return {
        "description": description,
        "version_added": None,
        "type": "string",
        "example": example,
        "default": default,
    }


CONFIG_OPTIONS: dict[str, dict[str, Any]] = {
    "ledger_url": _option(
        "SQLAlchemy URL of the mlchaos ledger (runs, events, fault leases, backups). Every worker "
        "must reach it: PostgreSQL in production. Default: a SQLite file under ``home``.",
        "postgresql+psycopg2://mlchaos@db/mlchaos",
        None,
    ),
    "home": _option(
        "Data directory of mlchaos (SQLite ledger, local backups). Default: ./.mlchaos",
        "/opt/airflow/mlchaos",
        None,
    ),
    "allowed_targets": _option(
        "Comma list of the locations faults may touch: paths, s3://bucket/prefix, "
        "<sqlalchemy-url>#<table or *>. Empty refuses everything. Run-time input (run conf, "
        "the trigger form) can only narrow it.",
        "/data/raw,s3://lake/raw/",
        "",
    ),
    "environment": _option(
        "Name of this environment; production/prod/live are refused unless allow_production.",
        "staging",
        "dev",
    ),
    "allow_production": _option(
        "Opt-in for chaos in a production environment (the experiment must opt in too).",
        "False",
        "False",
    ),
    "s3_endpoint_url": _option("S3-compatible endpoint for boto3.", "http://minio:9000", None),
    "default_ttl_s": _option(
        "Lease lifetime (seconds) of a fault whose experiment sets none; also the ceiling of a "
        "run-time experiment's ttl_s.",
        "900",
        "900",
    ),
    "reports_location": _option(
        "Where suite reports are written (a folder or s3://bucket/prefix).",
        "s3://lake/mlchaos-reports/",
        None,
    ),
    "alert_conn_id": _option(
        "Airflow connection holding the alert webhook URL (used by MlchaosWebhookNotifier).",
        "mlchaos_alerts",
        None,
    ),
    "xcom_backend": _option(
        "The XCom backend that mlchaos_orchestration.airflow.xcom_backend.ChaosXCom (set as "
        "[core] xcom_backend) wraps. Default: Airflow's BaseXCom.",
        "my_company.xcom.S3XComBackend",
        None,
    ),
}


#: the alert webhook connection type (UI metadata: Airflow imports no hook to draw the form)
WEBHOOK_CONNECTION_TYPE: dict[str, Any] = {
    "connection-type": "mlchaos_webhook",
    "hook-class-name": "mlchaos_orchestration.airflow.webhook.MlchaosWebhookHook",
    "hook-name": "mlchaos alert webhook",
    "ui-field-behaviour": {
        "hidden-fields": ["host", "schema", "login", "port", "extra"],
        "relabeling": {"password": "Webhook URL"},
        "placeholders": {"password": "https://hooks.slack.com/services/T000/B000/XXXX"},
    },
    "conn-fields": {
        "timeout": {
            "label": "Timeout",
            "schema": {"type": ["number", "null"]},
            "description": "Optional. Seconds to wait for the webhook's answer (default 5).",
        }
    },
}


def get_provider_info() -> dict[str, Any]:
    """Provider metadata in the shape Airflow's ProvidersManager validates."""
    return {
        "package-name": "mlchaos-orchestration",
        "name": "mlchaos",
        "description": "Chaos engineering for ML data pipelines: faults, gates, verdicts.",
        "versions": [__version__],
        "config": {
            "mlchaos": {
                "description": "Settings of mlchaos-orchestration (MLCHAOS_* variables win).",
                "options": CONFIG_OPTIONS,
            }
        },
        "connection-types": [WEBHOOK_CONNECTION_TYPE],
        "notifications": ["mlchaos_orchestration.airflow.notifier.MlchaosWebhookNotifier"],
    }
