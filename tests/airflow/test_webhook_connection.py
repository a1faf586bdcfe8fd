"""The ``mlchaos_webhook`` connection type: Airflow lists it through the provider entry point
(hook, form fields, field behaviour), and the notifier delivers through a connection of that
type to a real webhook on loopback, by its id or by ``[mlchaos] alert_conn_id``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlchaos_orchestration.testing import WebhookReceiver

PROBE = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from airflow.providers_manager import ProvidersManager
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
from mlchaos_orchestration.airflow.notifier import MlchaosWebhookNotifier

pm = ProvidersManager()
hook = ProvidersManagerTaskRuntime().hooks.get("mlchaos_webhook")
out = {
    "hook": [hook.hook_class_name, hook.connection_type, hook.hook_name, hook.package_name],
    "behaviour": pm.field_behaviours.get("mlchaos_webhook"),
    "widgets": sorted(k for k in pm.connection_form_widgets if "mlchaos" in k),
    "notifications": [n for n in pm.notification if "mlchaos" in n],
}
context = {"run_id": "manual__1", "exception": "boom"}
for conn_id in (sys.argv[1], None):  # by id, then from [mlchaos] alert_conn_id
    MlchaosWebhookNotifier(conn_id=conn_id, text="{run_id}: {error}").notify(context)
print("@@" + json.dumps(out))
"""


def test_airflow_lists_the_webhook_connection_type_and_the_notifier_uses_it(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLCHAOS_"))}
    with WebhookReceiver() as receiver:
        conn = {"conn_type": "mlchaos_webhook", "password": receiver.url, "extra": {"timeout": 3}}
        env.update(
            AIRFLOW_HOME=str(tmp_path / "airflow"),
            AIRFLOW_CONN_TEAM_ALERTS=json.dumps(conn),
            AIRFLOW__MLCHAOS__ALERT_CONN_ID="team_alerts",
            MLCHAOS_HOME=str(tmp_path / "mlchaos"),
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        proc = subprocess.run(
            [sys.executable, "-c", PROBE, "team_alerts"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        received = receiver.wait_for(2, timeout=10)
        url = receiver.url
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("@@"))
    out = json.loads(line[2:])
    assert out["hook"] == [
        "mlchaos_orchestration.airflow.webhook.MlchaosWebhookHook",
        "mlchaos_webhook",
        "mlchaos alert webhook",
        "mlchaos-orchestration",
    ]
    assert out["behaviour"]["relabeling"] == {"password": "Webhook URL"}
    assert "host" in out["behaviour"]["hidden_fields"]
    assert out["widgets"] == ["extra__mlchaos_webhook__timeout"]
    assert out["notifications"] == ["mlchaos_orchestration.airflow.notifier.MlchaosWebhookNotifier"]
    assert [r.json["text"] for r in received] == ["manual__1: boom", "manual__1: boom"]
    assert url not in proc.stdout + proc.stderr  # the URL is a secret: never logged
