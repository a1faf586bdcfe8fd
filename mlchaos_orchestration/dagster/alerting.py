"""Alerting: a run-failure sensor that posts to a webhook and records delivery in the ledger.

The webhook URL is a secret read from an environment variable (never logged or stored). For a
chaos run (tag ``mlchaos/run_id`` or ``mlchaos/experiment``) delivery is recorded as
``alert_sent`` / ``alert_failed`` through :func:`mlchaos_orchestration.core.alerts.alert`, once per
run (the daemon and :func:`~.runner.run_experiment_dagster` may both evaluate the sensor). Other
runs are alerted without a ledger record - the sensor is a normal production failure alert.
"""

import os

import dagster as dg

from mlchaos_orchestration.dagster.request import ledger_run_id as ledger_run_id_of

SENSOR_NAME = "mlchaos_alert_on_failure"
SOURCE = "dagster:failure_sensor"


def deliver_alert(run: dg.DagsterRun, message: str, *, webhook_url_env: str | None = None) -> bool:
    """Post the failure alert for ``run``; True if the endpoint answered 2xx."""
    from mlchaos_orchestration.core.alerts import alert, send_webhook
    from mlchaos_orchestration.core.ledger import Ledger

    text = f"Dagster run {run.run_id} of {run.job_name} failed: {message}"[:2000]
    ledger_run_id = ledger_run_id_of(run.tags, run.run_id)
    if not ledger_run_id:
        url = os.environ.get(webhook_url_env or "MLCHAOS_ALERT_WEBHOOK_URL", "")
        return bool(url) and send_webhook(url, {"text": text, "dagster_run_id": run.run_id})[0]
    ledger = Ledger()
    if any(e.kind == "alert_sent" for e in ledger.events(ledger_run_id)):
        return True
    env = webhook_url_env or _experiment_webhook_env(ledger, ledger_run_id)
    return alert(
        ledger,
        ledger_run_id,
        text=text,
        source=SOURCE,
        webhook_url_env=env,
        extra={"dagster_run_id": run.run_id, "job": run.job_name},
    )


def _experiment_webhook_env(ledger: object, run_id: str) -> str:
    run = ledger.get_run(run_id) or {}  # type: ignore[attr-defined]
    exp = (run.get("meta") or {}).get("experiment") or {}
    return str((exp.get("alert") or {}).get("webhook_url_env") or "MLCHAOS_ALERT_WEBHOOK_URL")


def chaos_alert_sensor(
    *,
    name: str = SENSOR_NAME,
    webhook_url_env: str | None = None,
    gate: str | None = None,
    consumer: str | None = None,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """A run-failure sensor (running by default) that delivers :func:`deliver_alert`, then
    finishes tag-launched chaos runs (:func:`~.finishing.finish_tagged_run`)."""
    from mlchaos_orchestration.dagster.finishing import finish_tagged_run

    @dg.run_failure_sensor(
        name=name,
        default_status=default_status,
        description="mlchaos: post failed runs to the alert webhook",
    )
    def _alert_on_failure(context: dg.RunFailureSensorContext) -> None:
        message = context.failure_event.message or "run failed"
        delivered = deliver_alert(context.dagster_run, message, webhook_url_env=webhook_url_env)
        context.log.info(
            "alert %s for run %s",
            "delivered" if delivered else "NOT delivered",
            context.dagster_run.run_id,
        )
        finish_tagged_run(context.instance, context.dagster_run, gate=gate, consumer=consumer)

    return _alert_on_failure
