"""The ``mlchaos_webhook`` Airflow connection type: where mlchaos alerts go.

Registered by the provider (``connection-types`` in
:func:`mlchaos_orchestration.airflow.provider.get_provider_info`), so Airflow's connection form
offers it with one secret field, the webhook URL (stored as the connection's password: masked in
the UI and in logs). :class:`~mlchaos_orchestration.airflow.notifier.MlchaosWebhookNotifier`
reads it through this hook, e.g. ``AIRFLOW_CONN_MLCHAOS_ALERTS='{"conn_type":
"mlchaos_webhook", "password": "https://hooks.slack.com/services/..."}'``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

CONN_TYPE = "mlchaos_webhook"


class MlchaosWebhookHook(BaseHook):
    """A Slack-style incoming webhook held in an Airflow connection."""

    conn_name_attr = "mlchaos_conn_id"
    default_conn_name = "mlchaos_alerts"
    conn_type = CONN_TYPE
    hook_name = "mlchaos alert webhook"

    def __init__(self, mlchaos_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlchaos_conn_id = mlchaos_conn_id

    def webhook_url(self) -> str:
        """The URL: the connection's password, else its ``webhook_url`` extra, else its host
        (connections made before this type existed)."""
        conn = self.get_connection(self.mlchaos_conn_id)
        extra = conn.extra_dejson or {}
        return str(conn.password or extra.get("webhook_url") or conn.host or "")

    def timeout_s(self, default: float = 5.0) -> float:
        """The connection's ``timeout`` field (seconds), else ``default``."""
        value = (self.get_connection(self.mlchaos_conn_id).extra_dejson or {}).get("timeout")
        return float(value) if value not in (None, "") else default

    def send(self, payload: dict[str, Any], *, timeout_s: float | None = None) -> tuple[bool, str]:
        """POST ``payload``; (delivered, short status), never the URL."""
        from mlchaos_orchestration.core.alerts import send_webhook

        timeout = self.timeout_s() if timeout_s is None else timeout_s
        return send_webhook(self.webhook_url(), payload, timeout_s=timeout)
