"""A ``kind: drift`` game-day experiment: drift-monitor chaos as a ledger run.

The example's traffic is replayed through the running prediction API (or its feedback labels
straight to the monitor) with the experiment's ``traffic_drift`` / ``feedback_skew`` fault from
the fault's ``start``; a :class:`~mlchaos_orchestration.gameday.drift.StreamMonitor` watches it
and, with alerts on, POSTs its first alert to the alert channel (a Slack-style webhook).

Verdicts are the core vocabulary (:mod:`mlchaos_orchestration.core.verdict`), read for a
monitor: ``caught`` (drift detected and the alert delivered), ``unalerted`` (detected, nobody
told: alerts off or the delivery failed), ``silent`` (never detected within the run),
``false_alarm`` (the monitor fired before the drift started), ``error`` (the experiment broke).

Ledger run (orchestrator ``gameday``): ``fault_applied`` at the first drifted request,
``alert_sent`` / ``alert_failed`` as the monitor alerts, ``drift_detected`` at the first
detection after the start, ``restored`` when the replay ends (the fault acted on the replayed
requests in memory: nothing stored changed), and the verdict with its evidence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mlchaos_orchestration.gameday.plan import DriftExperiment

#: where a traffic fault acts, as the ledger names it
TRAFFIC_TARGET = "traffic://prediction_api/predict"
FEEDBACK_TARGET = "feedback://labels"


@dataclass
class DriftOutcome:
    """One drift experiment's verdict and the evidence behind it."""

    name: str
    fault: str
    params: dict[str, Any]
    alerts: bool
    channel: str  # where an alert goes, or "alerts off: unalerted"
    verdict: str
    reason: str
    run_id: str
    expect: str | None
    met: bool | None  # verdict == expect (None without an expected outcome)
    drift_start_request: int | None = None
    drift_start_time: str | None = None
    first_alert_request: int | None = None
    first_alert_time: str | None = None
    latency_requests: int | None = None
    latency_event_h: float | None = None
    latency_wall_s: float | None = None
    drifted_columns: list[str] = field(default_factory=list)
    alert_delivered: bool = False
    requests: int = 0
    checks: int = 0
    false_alarms: int = 0
    duration_s: float = 0.0
    unit: str = "requests"  # what positions count: requests, or feedback records


def run_drift(
    exp: DriftExperiment,
    api_url: str,
    ledger: Any,
    *,
    webhook_url: str | None,
    channel: str,
    suite_id: str | None = None,
) -> DriftOutcome:
    """Run ``exp`` against the API at ``api_url``; alerts (when on) go to ``webhook_url``."""
    from mlchaos_orchestration.gameday import drift_replay

    fault = exp.fault()
    traffic = exp.traffic_drift is not None
    run_id = ledger.start_run(
        exp.name, pipeline="prediction_api" if traffic else "feedback_labels",
        orchestrator="gameday", suite_id=suite_id,
        meta={"kind": "drift", "alerts": exp.alerts, "fault": fault.spec(),
              "monitor": exp.monitor.model_dump(), "expect": exp.expect},
    )  # fmt: skip
    shown = channel if exp.alerts else "alerts off: unalerted"
    base = DriftOutcome(
        exp.name, fault.name, fault.spec(), exp.alerts, shown, "error", "", run_id, exp.expect,
        None,
    )  # fmt: skip
    base.unit = "requests" if traffic else "feedback records"
    t0 = time.monotonic()
    notify = _notifier(ledger, run_id, webhook_url, channel) if exp.alerts else None
    m = exp.monitor
    kwargs: dict[str, Any] = {
        "reference_rows": m.reference, "window": m.window, "step": m.step,
        "drift_share": m.drift_share, "alerts": exp.alerts, "notify": notify, "seed": exp.seed,
    }  # fmt: skip
    if m.columns:
        kwargs["columns"] = tuple(m.columns)
    try:
        kwargs["stream"] = _stream(exp.days)
        if traffic:
            result = drift_replay.drift_experiment(fault, api_url, **kwargs)
        else:
            result = drift_replay.feedback_experiment(fault, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the verdict says the experiment broke
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        ledger.record(run_id, "error", source="drift_monitor", stage="drift", message=message)
        base.reason, base.duration_s = message, round(time.monotonic() - t0, 1)
        _finish(ledger, run_id, base)
        return base
    _record(ledger, run_id, result, fault, TRAFFIC_TARGET if traffic else FEEDBACK_TARGET)
    outcome = _judge(base, result)
    outcome.duration_s = round(time.monotonic() - t0, 1)
    _finish(ledger, run_id, outcome)
    return outcome


def _stream(days: list[str] | None) -> Any:
    from mlchaos_orchestration.gameday.drift_replay import request_stream
    from mlchaos_orchestration.gameday.materialize import example_features

    features = example_features()
    if days:
        features = features[features["event_ts"].dt.strftime("%Y-%m-%d").isin(days)]
    return request_stream(features)


def _notifier(ledger: Any, run_id: str, url: str | None, channel: str) -> Any:
    """The monitor's alert: POST to the webhook, ``alert_sent`` / ``alert_failed`` recorded;
    raises when not delivered (the monitor records the failure, nobody was told)."""
    from mlchaos_orchestration.core.alerts import send_webhook

    def notify(summary: dict[str, Any]) -> None:
        columns = ", ".join(summary["drifted_columns"])
        text = f"drift monitor: {columns} drifted (checked at request {summary['position']})"
        if url is None:
            delivered, status = False, "no alert channel"
        else:
            delivered, status = send_webhook(url, {"text": text, "drift": summary})
        ledger.record(
            run_id, "alert_sent" if delivered else "alert_failed", source="drift_monitor",
            channel=channel, delivered=delivered, status=status,
        )  # fmt: skip
        if not delivered:
            raise RuntimeError(f"alert not delivered to {channel}: {status}")

    return notify


def _record(ledger: Any, run_id: str, result: dict[str, Any], fault: Any, target: str) -> None:
    """The fault's start, the first detection after it and the end of the replay."""
    start_ts = result.get("drift_start_wall") or time.time()
    ledger.record(
        run_id, "fault_applied", source="drift_replay", ts=start_ts, fault=fault.name,
        params=fault.spec(), targets=[target], site={"step": "drift_replay", "input": target},
        drift_start_request=result["drift_start_request"],
        drift_start_time=result["drift_start_time"],
    )  # fmt: skip
    first = _first_detection(result)
    if first is not None:
        ledger.record(
            run_id, "drift_detected", source="drift_monitor", ts=first["wall_time"],
            request=result["detected_request"], event_time=result["detected_time"],
            drifted_columns=result["drifted_columns"], drift_share=first["check"]["drift_share"],
            scores=first["check"]["scores"], alerted=first["alerted"],
            latency_requests=result["latency_requests"],
            latency_event_s=result["latency_event_s"],
        )  # fmt: skip
    ledger.record(
        run_id, "restored", source="drift_replay", fault=fault.name, in_memory=True,
        how="the replay ended: the fault acted on the replayed stream in memory, nothing stored",
    )  # fmt: skip


def _first_detection(result: dict[str, Any]) -> dict[str, Any] | None:
    wanted = result.get("detected_request")
    start = result["reference_rows"]
    return next(
        (d for d in result["detections"] if wanted and start + d["position"] == wanted), None
    )


def _judge(base: DriftOutcome, result: dict[str, Any]) -> DriftOutcome:
    out = base
    out.verdict = result["verdict"]
    out.drift_start_request = result["drift_start_request"]
    out.drift_start_time = result["drift_start_time"]
    out.first_alert_request = result.get("detected_request")
    out.first_alert_time = result.get("detected_time")
    out.latency_requests = result["latency_requests"]
    if result["latency_event_s"] is not None:
        out.latency_event_h = round(result["latency_event_s"] / 3600, 2)
    # feedback records are not paced like live requests: no wall-clock latency for them
    out.latency_wall_s = result["latency_wall_s"] if out.unit == "requests" else None
    out.drifted_columns = list(result.get("drifted_columns") or [])
    out.alert_delivered = bool(result["alert_delivered"])
    out.requests, out.checks = result["requests"], result["checks"]
    out.false_alarms = result["false_alarms"]
    after = f"{out.latency_requests} {out.unit} ({out.latency_event_h} h of event time)"
    columns = ", ".join(out.drifted_columns)
    out.reason = {
        "caught": f"detected {after} after the drift start ({columns}); alerted via {out.channel}",
        "unalerted": f"detected {after} after the drift start ({columns}); nobody was told ("
        + ("alerts off" if not out.alerts else f"alert failed: {result.get('alert_error')}")
        + ")",
        "silent": f"never detected in {out.requests - (out.drift_start_request or 0)} "
        f"{out.unit} after the drift start ({out.checks} checks)",
        "false_alarm": f"the monitor fired {out.false_alarms} time(s) before the drift started",
    }[out.verdict]
    out.met = None if out.expect is None else out.verdict == out.expect
    return out


def _finish(ledger: Any, run_id: str, outcome: DriftOutcome) -> None:
    """The verdict with its evidence (the outcome's figures), then the run's end."""
    evidence = {
        k: getattr(outcome, k)
        for k in ("unit", "drift_start_request", "drift_start_time", "first_alert_request",
                  "first_alert_time", "latency_requests", "latency_event_h", "latency_wall_s",
                  "drifted_columns", "channel", "alert_delivered", "checks", "false_alarms",
                  "requests")
    }  # fmt: skip
    ledger.set_verdict(
        run_id,
        {"verdict": outcome.verdict, "reason": outcome.reason, "expect": outcome.expect,
         "met": outcome.met, "alert_expected": outcome.alerts, "evidence": evidence},
    )  # fmt: skip
    ledger.end_run(run_id, "finished")


def drift_line(o: DriftOutcome) -> str:
    """``drift <name>: <verdict> — <reason>`` (plus ``expected <x>`` when it differs)."""
    miss = f" [expected {o.expect}]" if o.met is False else ""
    return f"drift {o.name}: {o.verdict} — {o.reason}{miss}"


def run_drift_here(exp: DriftExperiment, api_url: str, ledger: Any, say: Any) -> DriftOutcome:
    """:func:`run_drift` with the game day's alert channel: the webhook in
    ``MLCHAOS_ALERT_WEBHOOK_URL``, else a local webhook receiver standing in for the on-call
    channel."""
    import os

    from mlchaos_orchestration.suite.receiver import WebhookReceiver

    say(f"drift {exp.name}: alerts {'on' if exp.alerts else 'off'}")
    url = os.environ.get(WEBHOOK_ENV, "")
    if url:
        outcome = run_drift(exp, api_url, ledger, webhook_url=url, channel=f"{WEBHOOK_ENV} webhook")
    else:
        with WebhookReceiver() as receiver:
            outcome = run_drift(
                exp, api_url, ledger, webhook_url=receiver.url, channel=LOCAL_CHANNEL
            )
    say(drift_line(outcome))
    return outcome


WEBHOOK_ENV = "MLCHAOS_ALERT_WEBHOOK_URL"
LOCAL_CHANNEL = "local webhook receiver (set MLCHAOS_ALERT_WEBHOOK_URL for yours)"
