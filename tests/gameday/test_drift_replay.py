"""Drift-monitor chaos on the real prediction API (uvicorn + Redis): detection latency with
alerts on and off, no false alarm on clean traffic, and what feedback skew does downstream."""

from __future__ import annotations

import pandas as pd
import pytest

from mlchaos_orchestration.faults.traffic import FeedbackSkew, TrafficDrift
from mlchaos_orchestration.gameday.drift_replay import (
    drift_experiment,
    feedback_skew_impact,
    request_stream,
)
from mlchaos_orchestration.gameday.materialize import example_features
from mlchaos_orchestration.suite.receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(600)
START = "2026-11-20"


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    """Three of the example's days (2000 requests each): the reference day, a clean day, and
    the day the drift starts."""
    features = example_features()
    days = features["event_ts"].dt.strftime("%Y-%m-%d")
    return request_stream(features[days.isin(["2026-11-16", "2026-11-19", START])])


def _run(fault: TrafficDrift, api, stream, **kw) -> dict:
    return drift_experiment(fault, api.url, stream=stream, window=2000, step=200, **kw)


def test_segment_drift_is_caught_with_alerts_and_only_seen_without(api, stream) -> None:
    fault = TrafficDrift(columns=["amount"], segment={"country": "IN"}, start=START)
    with WebhookReceiver() as hook:
        on = _run(fault, api, stream, webhook_url=hook.url)
        assert on["verdict"] == "caught" and on["alert_delivered"]
        (alert,) = hook.wait_for(1)
        assert "amount" in alert.json["drift"]["drifted_columns"]
        off = _run(fault, api, stream, webhook_url=hook.url, alerts=False)
        assert len(hook.requests) == 1  # alerts off: the monitor told nobody
    assert on["drift_start_request"] == off["drift_start_request"] == 4000
    assert on["false_alarms"] == off["false_alarms"] == 0
    # the segment is ~15% of the traffic: a few hundred requests into the drift, not at once
    assert 0 < on["latency_requests"] <= 1000 and on["latency_event_s"] > 0
    assert off["verdict"] == "unalerted" and not off["alert_delivered"]
    assert off["latency_requests"] == on["latency_requests"]  # it would have alerted then


def test_clean_traffic_raises_no_alarm_and_a_naive_window_cries_wolf(api, stream) -> None:
    tiny = TrafficDrift(columns=["amount"], fraction=0.01, k=0.01, start=START)
    clean = _run(tiny, api, stream)
    assert clean["verdict"] == "silent" and clean["false_alarms"] == 0 and clean["checks"] == 11
    # a 500-request window over time-ordered traffic sees the time of day as drift
    naive = drift_experiment(tiny, api.url, stream=stream, window=500, step=100)
    assert naive["verdict"] == "false_alarm" and naive["false_alarms"] >= 1


def test_drift_inside_the_reference_is_refused(api, stream) -> None:
    early = TrafficDrift(columns=["amount"], start="2026-11-16T12:00:00")
    with pytest.raises(ValueError, match="inside the reference"):
        _run(early, api, stream)


def test_feedback_skew_shows_in_the_group_column_and_the_retrained_model() -> None:
    impact = feedback_skew_impact(FeedbackSkew(column="country", groups=["IN"]))
    assert impact["dropped_rows"] > 500
    assert impact["monitor_clean"]["drifted_columns"] == []
    assert impact["monitor_skewed"]["drifted_columns"] == ["country"]
    # 1 of 8 columns: Evidently's dataset-level rule (share 0.5) would not flag it
    assert not impact["monitor_skewed"]["dataset_drift"]
    # the retrained model never saw the group: it under-scores the group's (riskier) users
    clean, skewed = impact["retrained_clean"]["group"], impact["retrained_skewed"]["group"]
    assert skewed["calibration_gap"] < clean["calibration_gap"] - 0.02
    others = impact["retrained_skewed"]["others"]["calibration_gap"]
    assert abs(others - impact["retrained_clean"]["others"]["calibration_gap"]) < 0.01
