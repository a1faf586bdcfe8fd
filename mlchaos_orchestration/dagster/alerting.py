"""Alerting: our run-failure sensor (one option among the user's own) and observing the user's.

Our sensor acts on chaos runs only (tag ``mlchaos/run_id``, ``mlchaos/experiment`` or
``mlchaos/experiment_spec``): it posts to a webhook whose URL is a secret read from an environment
variable (never logged or stored) and records ``alert_sent`` / ``alert_failed`` (channel
``mlchaos_webhook``) through :func:`mlchaos_orchestration.core.alerts.alert`, once per run (the
daemon and :func:`~.runner.run_experiment_dagster` may both evaluate the sensor). Dormant runs
are left to the user's own alerting: nothing is posted for them, unless the sensor is built with
``all_runs=True`` (then every failed run is posted; nothing is recorded for a dormant run).

:func:`observe_user_sensors` evaluates the user's own run-failure sensors (e.g. dagster-slack's
``make_slack_on_run_failure_sensor``) for one failed chaos run the way the daemon does
(``evaluate_tick`` with a cursor just before the run's failure record) and records
``alert_sent`` {channel: ``dagster_sensor:<name>``, delivered: true} when the sensor acted on the
run without raising (dagster-slack raises when Slack refuses the message), ``alert_failed``
otherwise. In-process runs are invisible to the daemon's sensors (they match on the code
location), so this evaluation is what alerts for them.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from mlchaos_orchestration.dagster.request import ledger_run_id as ledger_run_id_of

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.dagster.scope import Scopes

SENSOR_NAME = "mlchaos_alert_on_failure"
SOURCE = "dagster:failure_sensor"


def deliver_alert(
    run: dg.DagsterRun,
    message: str,
    *,
    webhook_url_env: str | None = None,
    all_runs: bool = False,
) -> bool:
    """Post the failure alert for the chaos run ``run``; True if the endpoint answered 2xx.
    Dormant runs (no chaos tags) are not alerted here (False): the user's alerting owns them -
    unless ``all_runs`` (posted, not recorded: there is no ledger run)."""
    from mlchaos_orchestration.core.alerts import alert
    from mlchaos_orchestration.core.ledger import Ledger

    text = f"Dagster run {run.run_id} of {run.job_name} failed: {message}"[:2000]
    ledger_run_id = ledger_run_id_of(run.tags, run.run_id)
    if not ledger_run_id:
        return all_runs and _post_dormant(run, text, webhook_url_env)
    ledger = Ledger()
    if ledger.get_run(ledger_run_id) is None:
        return False  # a refused run-time experiment: no ledger run was begun
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


def _post_dormant(run: dg.DagsterRun, text: str, webhook_url_env: str | None) -> bool:
    import os

    from mlchaos_orchestration.core.alerts import send_webhook

    url = os.environ.get(webhook_url_env or "MLCHAOS_ALERT_WEBHOOK_URL", "")
    payload = {"text": text, "source": SOURCE, "dagster_run_id": run.run_id, "job": run.job_name}
    return bool(url) and send_webhook(url, payload)[0]


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
    scopes: "Scopes | None" = None,
    all_runs: bool = False,
) -> dg.SensorDefinition:
    """A run-failure sensor (running by default) that delivers :func:`deliver_alert` for chaos
    runs (every failed run with ``all_runs``), then finishes tag-launched chaos runs
    (:func:`~.finishing.finish_tagged_run`)."""
    from mlchaos_orchestration.dagster.finishing import finish_tagged_run

    @dg.run_failure_sensor(
        name=name,
        default_status=default_status,
        description="mlchaos: post failed "
        + ("runs" if all_runs else "chaos runs")
        + " to the alert webhook",
    )
    def _alert_on_failure(context: dg.RunFailureSensorContext) -> None:
        chaos = bool(ledger_run_id_of(context.dagster_run.tags, context.dagster_run.run_id))
        if not (chaos or all_runs):
            return  # dormant run: the user's own alerting owns it
        message = context.failure_event.message or "run failed"
        delivered = deliver_alert(
            context.dagster_run, message, webhook_url_env=webhook_url_env, all_runs=all_runs
        )
        context.log.info(
            "alert %s for run %s",
            "delivered" if delivered else "NOT delivered",
            context.dagster_run.run_id,
        )
        finish_tagged_run(
            context.instance, context.dagster_run, gate=gate, consumer=consumer, scopes=scopes
        )

    return _alert_on_failure


def is_run_failure_sensor(sensor: Any) -> bool:
    """Whether ``sensor`` reacts to failed runs (``@run_failure_sensor``, dagster-slack's
    ``make_slack_on_run_failure_sensor``, a ``@run_status_sensor`` on FAILURE)."""
    status = getattr(sensor, "_run_status", None)
    return isinstance(sensor, dg.RunStatusSensorDefinition) and (
        status == dg.DagsterRunStatus.FAILURE
    )


def observe_user_sensors(
    sensors: list[Any],
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    ledger_run_id: str,
    *,
    ledger: Any = None,
) -> list[dict[str, Any]]:
    """Evaluate each of the user's run-failure ``sensors`` for the failed ``run`` (daemon-like)
    and record ``alert_sent`` / ``alert_failed`` per sensor; return what was recorded."""
    from mlchaos_orchestration.core.ledger import Ledger

    ledger = ledger or Ledger()
    record = next(
        (
            r
            for r in instance.fetch_run_status_changes(
                dg.DagsterEventType.RUN_FAILURE, limit=1000
            ).records
            if r.run_id == run.run_id
        ),
        None,
    )
    out = []
    for sensor in sensors:
        channel = f"dagster_sensor:{sensor.name}"
        if record is None:
            outcome = {"delivered": False, "status": "run failure record not found"}
        else:
            outcome = _evaluate(sensor, instance, run.run_id, record.storage_id)
        if outcome is None:
            continue  # the sensor does not monitor this run (e.g. other jobs only)
        kind = "alert_sent" if outcome["delivered"] else "alert_failed"
        ledger.record(ledger_run_id, kind, source=channel, channel=channel, **outcome)
        out.append({"channel": channel, **outcome})
    return out


def _evaluate(
    sensor: Any, instance: dg.DagsterInstance, run_id: str, storage_id: int
) -> dict[str, Any] | None:
    from dagster._core.definitions.run_status_sensor_definition import RunStatusSensorCursor

    cursor = RunStatusSensorCursor(record_id=storage_id - 1).to_json()
    try:
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    except Exception as exc:  # noqa: BLE001 - the sensor's own evaluation failed
        return {"delivered": False, "status": f"{type(exc).__name__}: {str(exc)[:200]}"}
    reactions = [
        r
        for r in data.dagster_run_reactions or []
        if r.dagster_run and r.dagster_run.run_id == run_id
    ]
    if not reactions:
        return None
    error = reactions[0].error
    if error is None:
        return {"delivered": True, "status": "sensor acted on run status FAILURE"}
    message = (error.message or "").strip().splitlines()
    return {
        "delivered": False,
        "status": f"{error.cls_name}: {message[0][:200] if message else ''}".strip(),
    }
