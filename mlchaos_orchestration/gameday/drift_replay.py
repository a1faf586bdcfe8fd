"""Drift-monitor chaos on the example's prediction traffic.

:func:`drift_experiment` replays the example's events in time order as ``POST /predict``
requests to the running prediction API, with a ``traffic_drift`` fault shifting a segment or a
fraction of the requests from its ``start`` on, and runs a :class:`StreamMonitor` over what the
API saw (request features and the score it answered). It measures detection latency (drift
start -> monitor alert) in requests, in event time and in wall time, with alerts on or off
("would we have noticed": off, the monitor still computes drift but nobody is told).

:func:`feedback_experiment` watches the feedback labels the same way while a ``feedback_skew``
fault drops a user group from them. :func:`feedback_skew_impact` shows what that fault does to
the monitor's view of the feedback and to a model retrained on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlchaos_orchestration.gameday.drift import DriftMonitor, StreamMonitor, webhook_notifier

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mlchaos_orchestration.faults.traffic import FeedbackSkew, TrafficDrift

REQUEST_COLUMNS = ["amount", "hour"]
#: what the monitor watches by default: the request amount and the model's score. ``hour`` is
#: left out: time-ordered traffic makes a window of a few hundred requests cover a few hours,
#: so the hour of day "drifts" on every clean window (measured: false alarms from the start)
MONITORED = ("amount", "score")


def request_stream(features: pd.DataFrame | None = None) -> pd.DataFrame:
    """The example's events as prediction requests, in time order (``hour`` from the time)."""
    from mlchaos_orchestration.gameday.materialize import example_features

    frame = example_features() if features is None else features
    frame = frame.sort_values("event_ts", kind="stable").reset_index(drop=True)
    return frame.assign(hour=frame["event_ts"].dt.hour.astype("int64"))


def drift_experiment(
    fault: TrafficDrift,
    api_url: str,
    *,
    stream: pd.DataFrame | None = None,
    reference_rows: int = 2000,
    window: int = 500,
    step: int = 100,
    drift_share: float = 0.5,
    columns: tuple[str, ...] = MONITORED,
    alerts: bool = True,
    webhook_url: str | None = None,
    notify: Notify | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Replay the stream through the API with ``fault`` from its ``start``; return the
    verdict, the detection latency and every detection.

    The first ``reference_rows`` requests (they must precede the drift) are the monitor's
    reference. ``notify`` (else a webhook to ``webhook_url``) delivers the alert. Verdicts:
    ``caught`` (detected after the start and the alert delivered), ``unalerted`` (detected,
    nobody told), ``silent`` (never detected), ``false_alarm`` (detected before the drift
    started).
    """
    import httpx

    requests = request_stream() if stream is None else stream
    faulted = fault.apply(requests, seed).frame
    start_at = _start_position(requests, fault, reference_rows)
    with httpx.Client(base_url=api_url, timeout=10.0, trust_env=False) as client:
        served = (_served(client, row) for row in _rows(faulted))
        watch = Watch(list(columns), [], drift_share, window, step, alerts, notify, webhook_url)
        return watch.run(served, faulted, start_at, reference_rows)


def feedback_experiment(
    fault: FeedbackSkew,
    *,
    stream: pd.DataFrame | None = None,
    reference_rows: int = 2000,
    window: int = 2000,
    step: int = 200,
    drift_share: float = 0.5,
    columns: tuple[str, ...] | None = None,
    alerts: bool = True,
    webhook_url: str | None = None,
    notify: Notify | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The feedback labels coming back from the traffic, in time order, with ``fault`` dropping
    a user group from its ``start`` on, watched by the same stream monitor (categorical tests on
    ``columns``, default the group column and the label). Same outcome as
    :func:`drift_experiment`; positions count feedback records."""
    from mlchaos_orchestration.examples.steps import LABEL

    frame = request_stream() if stream is None else stream
    faulted = fault.apply(frame, seed).frame
    start_at = _start_position(frame, fault, reference_rows)
    watched = list(columns or (fault.column, LABEL))
    records = (dict(zip(watched, row, strict=True)) for row in faulted[watched].itertuples(False))
    watch = Watch([], watched, drift_share, window, step, alerts, notify, webhook_url)
    return watch.run(records, faulted, start_at, reference_rows)


Notify = Callable[[dict[str, Any]], None]


@dataclass
class Watch:
    """A stream monitor's settings; :meth:`run` feeds it a stream and judges what it saw."""

    numeric: list[str]
    categorical: list[str]
    drift_share: float
    window: int
    step: int
    alerts: bool
    notify: Notify | None = None
    webhook_url: str | None = None

    def run(
        self, rows: Iterator[dict[str, Any]], faulted: pd.DataFrame, start_at: int, reference: int
    ) -> dict[str, Any]:
        """The first ``reference`` rows are the reference; the rest go through the monitor."""
        import pandas as pd

        head = pd.DataFrame([next(rows) for _ in range(reference)])
        notify = self.notify or (webhook_notifier(self.webhook_url) if self.webhook_url else None)
        monitor = StreamMonitor(
            DriftMonitor(head, self.numeric, self.categorical, drift_share=self.drift_share),
            window=self.window,
            step=self.step,
            alerts=self.alerts,
            notify=notify,
        )
        started_wall: float | None = None
        for position, row in enumerate(rows, reference):
            if position == start_at:
                started_wall = time.time()
            monitor.observe(row)
        return _outcome(faulted, monitor, reference, start_at, started_wall, self.alerts)


def _start_position(requests: pd.DataFrame, fault: Any, reference_rows: int) -> int:
    """How many rows of the stream precede the fault's ``start`` (refused inside the
    reference)."""
    import pandas as pd

    start_at = 0
    if fault.start:
        times = pd.to_datetime(requests[fault.time_column])
        start_at = int((times < pd.Timestamp(fault.start)).sum())
    if start_at < reference_rows:
        raise ValueError(f"the drift starts at request {start_at}, inside the reference")
    return start_at


def _rows(frame: pd.DataFrame) -> Any:
    return frame[["user_id", *REQUEST_COLUMNS]].itertuples(index=False)


def _served(client: Any, row: Any) -> dict[str, Any]:
    """One request through the API: what it saw (request features) and what it answered."""
    body = {"user_id": int(row.user_id), "amount": float(row.amount), "hour": int(row.hour)}
    response = client.post("/predict", json=body)
    response.raise_for_status()
    return {"amount": body["amount"], "hour": body["hour"], "score": response.json()["score"]}


def _outcome(
    stream: pd.DataFrame,
    monitor: StreamMonitor,
    reference_rows: int,
    start_at: int,
    started_wall: float | None,
    alerts: bool,
) -> dict[str, Any]:
    def at(d: Any) -> int:  # the row count of the stream when the check ran
        return reference_rows + d.position

    before = [d for d in monitor.detections if at(d) <= start_at]
    after = [d for d in monitor.detections if at(d) > start_at]
    first = after[0] if after else None
    times = stream["event_ts"]
    out: dict[str, Any] = {
        "alerts": alerts,
        "requests": int(len(stream)),
        "reference_rows": reference_rows,
        "drift_start_request": start_at,
        "drift_start_time": _iso(times.iloc[start_at]) if start_at < len(stream) else None,
        "drift_start_wall": started_wall,
        "checks": monitor.checks,
        "false_alarms": len(before),
        "detections": monitor.report(),
        "detected": first is not None,
        "latency_requests": None,
        "latency_event_s": None,
        "latency_wall_s": None,
        "alert_delivered": bool(first and first.alerted),
        "alert_error": first.alert_error if first else None,
    }
    if first is not None:
        out["latency_requests"] = at(first) - start_at
        out["latency_event_s"] = float(
            (times.iloc[at(first) - 1] - times.iloc[start_at]).total_seconds()
        )
        out["detected_request"] = at(first)
        out["detected_time"] = _iso(times.iloc[at(first) - 1])
        if started_wall is not None:
            out["latency_wall_s"] = round(first.wall_time - started_wall, 3)
        out["drifted_columns"] = first.check["drifted_columns"]
    if before:
        out["verdict"] = "false_alarm"
    elif first is None:
        out["verdict"] = "silent"
    else:
        out["verdict"] = "caught" if first.alerted else "unalerted"
    return out


def _iso(stamp: Any) -> str:
    return str(stamp.isoformat()) if hasattr(stamp, "isoformat") else str(stamp)


# ------------------------------------------------------------------------------ feedback skew
def feedback_skew_impact(
    fault: FeedbackSkew,
    features: pd.DataFrame | None = None,
    *,
    reference_share: float = 0.4,
    seed: int = 0,
) -> dict[str, Any]:
    """What ``fault`` does downstream of the feedback labels.

    The labelled events are split in time: the first ``reference_share`` is the monitor's
    reference, the rest the feedback window. The monitor checks the feedback window clean and
    skewed (the group column and the label among its columns); a model retrained on each is
    scored on the excluded group's true outcomes (AUC and the gap between mean score and
    observed fraud rate, i.e. calibration) and on everyone else.
    """
    from mlchaos_orchestration.examples.steps import CATEGORICAL, LABEL, NUMERIC

    frame = request_stream(features)
    cut = int(len(frame) * reference_share)
    reference, feedback = frame.iloc[:cut], frame.iloc[cut:].reset_index(drop=True)
    skewed = fault.apply(feedback, seed).frame
    categorical = sorted({*CATEGORICAL, fault.column, LABEL})
    numeric = [c for c in NUMERIC if c not in categorical]
    monitor = DriftMonitor(reference, numeric=numeric, categorical=categorical)
    in_group = reference[fault.column].isin(fault.groups)
    return {
        "fault": fault.spec(),
        "feedback_rows": int(len(feedback)),
        "dropped_rows": int(len(feedback) - len(skewed)),
        "monitor_clean": monitor.check(feedback).summary(),
        "monitor_skewed": monitor.check(skewed).summary(),
        "label_rate_clean": round(float(feedback[LABEL].mean()), 6),
        "label_rate_skewed": round(float(skewed[LABEL].mean()), 6),
        "retrained_clean": _group_scores(feedback, reference, in_group, seed),
        "retrained_skewed": _group_scores(skewed, reference, in_group, seed),
    }


def _group_scores(
    train_on: pd.DataFrame, evaluate_on: pd.DataFrame, in_group: pd.Series, seed: int
) -> dict[str, dict[str, float]]:
    """The retrained model's AUC and calibration gap on the group and on everyone else."""
    from sklearn.metrics import roc_auc_score

    from mlchaos_orchestration.examples.steps import CATEGORICAL, LABEL, NUMERIC, train

    model, _ = train(train_on, seed=seed)
    out = {}
    for name, mask in (("group", in_group), ("others", ~in_group)):
        part = evaluate_on[mask.to_numpy()]
        proba = model.predict_proba(part[NUMERIC + CATEGORICAL])[:, 1]
        truth = part[LABEL].astype("int64")
        out[name] = {
            "auc": round(float(roc_auc_score(truth, proba)), 6),
            "calibration_gap": round(float(proba.mean() - truth.mean()), 6),
            "rows": int(len(part)),
        }
    return out
