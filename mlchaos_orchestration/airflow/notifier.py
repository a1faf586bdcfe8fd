"""Alerts through a Slack-style incoming webhook, as an Airflow notifier (failure callback).

Delivery is observed: only a 2xx answer counts. On chaos runs the delivery is recorded in the
ledger (``alert_sent`` / ``alert_failed``), which is what the verdict reads. The webhook URL is a
secret: it is read from an env var, an Airflow Variable or Connection, and never logged.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import BaseNotifier


class MlchaosWebhookNotifier(BaseNotifier):
    """POST ``{"text": ...}`` to a webhook; usable as ``on_failure_callback``.

    ``text`` may use ``{dag_id}``, ``{task_id}``, ``{run_id}`` and ``{error}``.

    The URL comes from the first that is set: env var ``webhook_url_env``, Airflow Variable
    ``variable``, Airflow Connection ``conn_id`` (default ``[mlchaos] alert_conn_id``) of type
    ``mlchaos_webhook`` (its password; older connections: its ``webhook_url`` extra or host).
    """

    template_fields = ()  # rendering in place would leak one task's text into the next

    def __init__(
        self,
        *,
        text: str | None = None,
        webhook_url_env: str = "MLCHAOS_ALERT_WEBHOOK_URL",
        variable: str | None = None,
        conn_id: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        super().__init__()
        self.text = text or "{dag_id}.{task_id} failed (run {run_id})"
        self.webhook_url_env = webhook_url_env
        self.variable = variable
        self.conn_id = conn_id
        self.timeout_s = timeout_s

    def webhook_url(self) -> str:
        """The configured webhook URL ('' when none is configured)."""
        url = os.environ.get(self.webhook_url_env, "")
        if not url and self.variable:
            from airflow.sdk import Variable

            url = str(Variable.get(self.variable, default="") or "")
        conn_id = self.conn_id or _configured_conn_id()
        if not url and conn_id:
            from mlchaos_orchestration.airflow.webhook import MlchaosWebhookHook

            url = MlchaosWebhookHook(conn_id).webhook_url()
        return url

    def notify(self, context: Any) -> None:
        from mlchaos_orchestration.core.alerts import send_webhook

        ti = context.get("ti") or context.get("task_instance")
        source = getattr(ti, "task_id", "") or ""
        error = str(context.get("exception") or "").strip()
        text = self.text.format_map(
            _Fields(
                dag_id=getattr(ti, "dag_id", ""),
                task_id=source,
                run_id=context.get("run_id", ""),
                error=error.splitlines()[0] if error else "",
            )
        )
        try:
            url = self.webhook_url()
        except Exception as exc:  # noqa: BLE001 - e.g. a missing connection: not delivered
            url, missing = "", f"no webhook URL ({type(exc).__name__})"
        else:
            missing = "no webhook URL configured"
        if url:
            delivered, status = send_webhook(
                url, {"text": text, "source": source}, timeout_s=self.timeout_s
            )
        else:
            delivered, status = False, missing
        level = self.log.info if delivered else self.log.warning
        level("mlchaos alert for %s: %s", source, status)
        _record(context, source, delivered, status)


def _configured_conn_id() -> str | None:
    """``[mlchaos] alert_conn_id`` / ``MLCHAOS_ALERT_CONN_ID``: a ``mlchaos_webhook``
    connection."""
    from mlchaos_orchestration.settings import get_settings

    return get_settings().alert_conn_id


class _Fields(dict):
    """Format fields; unknown placeholders stay as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _record(context: Any, source: str, delivered: bool, status: str) -> None:
    """Record the delivery on chaos runs only; never let bookkeeping break the callback."""
    from mlchaos_orchestration.airflow.context import chaos_run

    try:
        run = chaos_run(context)
        if run is None:
            return
        from mlchaos_orchestration.core.control import record

        record(
            run.run_id,
            "alert_sent" if delivered else "alert_failed",
            source=source,
            channel="mlchaos_webhook",
            delivered=delivered,
            status=status,
        )
    except Exception as exc:  # noqa: BLE001 - an alert callback must not raise on bookkeeping
        import logging

        logging.getLogger(__name__).warning("mlchaos: could not record alert: %s", exc)
