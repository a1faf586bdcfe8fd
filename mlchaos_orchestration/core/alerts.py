"""Alert delivery to a Slack-style incoming webhook. Delivery is observed, not assumed: only a 2xx
answer from the endpoint counts, and the ``alert_sent`` event records it (never the URL: it is a
secret)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from mlchaos_orchestration.core.ledger import Ledger


def send_webhook(url: str, payload: dict[str, Any], *, timeout_s: float = 5.0) -> tuple[bool, str]:
    """POST ``payload`` as JSON; return (delivered, short status). Never raises for HTTP errors."""
    if not url.startswith(("http://", "https://")):
        return False, "webhook URL must be http(s)"
    body = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return 200 <= response.status < 300, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, type(exc).__name__


def alert(
    ledger: Ledger,
    run_id: str,
    *,
    text: str,
    source: str,
    webhook_url_env: str = "MLCHAOS_ALERT_WEBHOOK_URL",
    timeout_s: float = 5.0,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Deliver an alert for a run and record ``alert_sent`` (or ``alert_failed``)."""
    url = os.environ.get(webhook_url_env, "")
    if not url:
        ledger.record(
            run_id,
            "alert_failed",
            source=source,
            channel="mlchaos_webhook",
            delivered=False,
            status=f"{webhook_url_env} not set",
        )
        return False
    payload = {"text": text, "run_id": run_id, "source": source, **(extra or {})}
    delivered, status = send_webhook(url, payload, timeout_s=timeout_s)
    ledger.record(
        run_id,
        "alert_sent" if delivered else "alert_failed",
        source=source,
        channel="mlchaos_webhook",
        delivered=delivered,
        status=status,
    )
    return delivered
