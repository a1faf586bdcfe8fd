"""The drift monitor: Evidently's test selection on scipy, sliding windows, alerts on and off."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlchaos_orchestration.gameday.drift import DriftMonitor, StreamMonitor, webhook_notifier
from mlchaos_orchestration.suite.receiver import WebhookReceiver


def _frame(n: int, shift: float = 0.0, seed: int = 0, p=(0.5, 0.3, 0.2)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.normal(50, 10, n) + shift * 10,
            "n_tx": rng.integers(0, 3, n),  # few values: tested as categorical
            "country": rng.choice(["US", "IN", "DE"], n, p=list(p)),
        }
    )


def test_tests_are_chosen_by_reference_size_as_evidently_does() -> None:
    small = DriftMonitor(_frame(800), ["amount", "n_tx"], ["country"])
    large = DriftMonitor(_frame(5000), ["amount", "n_tx"], ["country"])
    assert [small.method(c) for c in ("amount", "n_tx", "country")] == [
        "ks", "chisquare", "chisquare",
    ]  # fmt: skip
    assert [large.method(c) for c in ("amount", "n_tx", "country")] == [
        "wasserstein", "jensenshannon", "jensenshannon",
    ]  # fmt: skip


@pytest.mark.parametrize("reference_rows", [800, 5000])
def test_clean_resamples_pass_and_a_shift_drifts(reference_rows: int) -> None:
    monitor = DriftMonitor(_frame(reference_rows), ["amount"], ["country"])
    clean = monitor.check(_frame(1000, seed=1))
    assert not clean.dataset_drift and clean.drifted_columns == []
    shifted = monitor.check(_frame(1000, shift=0.5, seed=1))
    assert shifted.drifted_columns == ["amount"] and shifted.drift_share == 0.5
    assert shifted.dataset_drift  # 1 of 2 columns reaches Evidently's default share 0.5
    skew = monitor.check(_frame(1000, seed=2, p=(0.85, 0.0, 0.15)))
    assert "country" in skew.drifted_columns  # a group missing from the window


def test_unseen_category_drifts_on_a_small_reference() -> None:
    monitor = DriftMonitor(_frame(500), [], ["country"])
    window = _frame(300, seed=3).assign(country="FR")
    (result,) = monitor.check(window).columns
    assert result.method == "chisquare" and result.drifted and result.score == 0.0


def test_drift_share_decides_dataset_drift() -> None:
    strict = DriftMonitor(_frame(2000), ["amount", "n_tx"], ["country"], drift_share=0.5)
    shifted = _frame(1000, shift=0.5, seed=1)
    assert not strict.check(shifted).dataset_drift  # 1 of 3 columns
    loose = DriftMonitor(_frame(2000), ["amount", "n_tx"], ["country"], drift_share=0.3)
    assert loose.check(shifted).dataset_drift
    with pytest.raises(ValueError, match="drift_share"):
        DriftMonitor(_frame(10), ["amount"], drift_share=0)


def _stream(monitor: StreamMonitor, frame: pd.DataFrame) -> None:
    for row in frame.to_dict("records"):
        monitor.observe(row)


def test_stream_alerts_once_per_episode_and_records_when_alerts_are_off() -> None:
    reference = _frame(2000)
    traffic = pd.concat([_frame(1000, seed=5), _frame(1000, shift=1.0, seed=6)], ignore_index=True)
    told: list[dict] = []
    on = StreamMonitor(
        DriftMonitor(reference, ["amount"]), window=400, step=100, notify=told.append
    )
    _stream(on, traffic)
    assert len(on.detections) == 1 and len(told) == 1  # one episode, one alert
    first = on.detections[0]
    assert 1000 < first.position <= 1400 and first.alerted
    off = StreamMonitor(
        DriftMonitor(reference, ["amount"]), window=400, step=100, alerts=False, notify=told.append
    )
    _stream(off, traffic)
    assert [d.position for d in off.detections] == [first.position]  # would have alerted then
    assert not off.detections[0].alerted and len(told) == 1  # ... and nobody was told
    assert off.checks == on.checks == (2000 - 400) // 100 + 1


def test_webhook_alert_is_delivered_or_its_failure_recorded() -> None:
    reference = _frame(2000)
    drifted = _frame(500, shift=2.0, seed=7)
    with WebhookReceiver() as hook:
        ok = StreamMonitor(
            DriftMonitor(reference, ["amount"]),
            window=200,
            step=200,
            notify=webhook_notifier(hook.url),
        )
        _stream(ok, drifted)
        (received,) = hook.wait_for(1)
        assert received.json["drift"]["drifted_columns"] == ["amount"]
        assert ok.detections[0].alerted
    with WebhookReceiver(status_code=500) as broken:
        failing = StreamMonitor(
            DriftMonitor(reference, ["amount"]),
            window=200,
            step=200,
            notify=webhook_notifier(broken.url),
        )
        _stream(failing, drifted)
        detection = failing.detections[0]
        assert not detection.alerted and "500" in (detection.alert_error or "")
