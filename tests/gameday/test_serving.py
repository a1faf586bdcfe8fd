"""The prediction API on real Redis and uvicorn: features, mitigation, serving faults, metrics."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mlchaos_orchestration.gameday.serving import LinearScorer, Predictor
from mlchaos_orchestration.gameday.stack import http_get
from mlchaos_orchestration.interceptors.proxy import Toxic

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(url: str, method: str = "POST", body: Any = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(), method=method
    )
    req.add_header("content-type", "application/json")
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def predict(api: Any, user: int, amount: float = 20.0) -> tuple[int, dict[str, Any]]:
    return call(api.url + "/predict", body={"user_id": user, "amount": amount, "hour": 3})


def test_linear_scorer_gives_the_models_own_scores(serving: Any) -> None:
    import joblib
    import pandas as pd

    model = joblib.load(serving.assets.model_path)
    scorer = LinearScorer.from_pipeline(model)
    assert scorer is not None
    row = {"amount_log": 3.1, "age": 40, "account_age_days": 100, "n_tx_24h": 3,
           "is_night": 1, "country": "DE", "device": "mobile"}  # fmt: skip
    frame = pd.DataFrame([{k: row[k] for k in model.feature_names_in_}])
    assert scorer.score(row) == pytest.approx(model.predict_proba(frame)[0, 1], abs=1e-9)
    assert scorer.score({**row, "country": "never-seen"}) > 0  # unknown category: zero one-hot


def test_prediction_reads_the_users_features(serving: Any, api: Any) -> None:
    user = serving.assets.user_ids[0]
    status, body = predict(api, user)
    assert status == 200 and body["fallback"] is None and 0 < body["score"] < 1
    status, body = predict(api, 10**9)  # not in the store: defaults, counted as a fallback
    assert status == 200 and body["fallback"] == "unknown_user"


def test_slow_store_with_mitigation_serves_fallbacks_fast(serving: Any, api: Any) -> None:
    user = serving.assets.user_ids[1]
    assert predict(api, user)[1]["fallback"] is None  # cached as last good
    serving.proxy.add(Toxic("slow", "latency", attributes={"latency_ms": 300}))
    start = time.monotonic()
    answers = [predict(api, user) for _ in range(12)]
    took = time.monotonic() - start
    assert all(status == 200 for status, _ in answers)
    assert {body["fallback"] for _, body in answers} <= {"feature_store", "breaker_open"}
    assert answers[-1][1]["fallback"] == "breaker_open"  # 5 timeouts opened the circuit
    assert took < 12 * 0.3 / 2  # never waited the 300 ms: 50 ms timeouts, then fail fast
    metrics = http_get(api.url + "/metrics").decode()
    assert 'mlchaos_fallbacks_total{reason="breaker_open"}' in metrics
    assert "mlchaos_breaker_state 2.0" in metrics or "mlchaos_breaker_state 1.0" in metrics


@pytest.mark.parametrize("api", [False], indirect=True)
def test_slow_store_without_mitigation_waits_and_fails(serving: Any, api: Any) -> None:
    user = serving.assets.user_ids[2]
    serving.proxy.add(Toxic("slow", "latency", attributes={"latency_ms": 150}))
    start = time.monotonic()
    status, body = predict(api, user)
    assert status == 200 and body["fallback"] is None
    assert time.monotonic() - start >= 0.15  # the request paid the store's latency
    serving.proxy.clear()
    serving.proxy.add(Toxic("dead", "timeout", attributes={"timeout_ms": 0}))  # blackhole
    status, _ = call(api.url + "/predict", body={"user_id": user + 1, "amount": 1.0})
    assert status == 503  # no fallback: the read timed out (1 s) and the request failed


def test_serving_faults_latency_errors_and_dropped_features(serving: Any, api: Any) -> None:
    user = serving.assets.user_ids[3]
    call(api.url + "/mlchaos/serving-faults", "PUT", {"latency_ms": 200})
    start = time.monotonic()
    assert predict(api, user)[0] == 200
    assert time.monotonic() - start >= 0.2
    call(api.url + "/mlchaos/serving-faults", "PUT", {"error_rate": 1.0})
    assert predict(api, user)[0] == 500
    call(api.url + "/mlchaos/serving-faults", "PUT", {"drop_features": ["age"]})
    status, body = predict(api, user)
    assert status == 200 and body["fallback"] == "missing_features"  # filled from defaults
    call(api.url + "/mlchaos/serving-faults", "DELETE")
    assert call(api.url + "/mlchaos/serving-faults", "GET")[1]["drop_features"] == []
    assert predict(api, user)[1]["fallback"] is None


@pytest.mark.parametrize("api", [False], indirect=True)
def test_nulled_feature_without_mitigation_is_refused(serving: Any, api: Any) -> None:
    call(api.url + "/mlchaos/serving-faults", "PUT", {"null_features": ["n_tx_24h"]})
    assert predict(api, serving.assets.user_ids[4])[0] == 422


def test_predictor_counts_requests_and_errors_without_a_server(serving: Any) -> None:
    predictor = Predictor(serving.config(True))
    predictor.faults.error_rate = 1.0
    with pytest.raises(Exception, match="500 injected"):
        asyncio.run(predictor.predict(serving.assets.user_ids[0], 10.0, 12))
    assert predictor.metrics.requests._value.get() == 1


def test_a_feature_read_takes_at_most_its_timeout(serving: Any) -> None:
    """No hidden client retries: a blackholed read fails after one timeout, not four."""
    from mlchaos_orchestration.gameday.featurestore import FeatureStore

    store = FeatureStore(serving.proxied_url, timeout_s=0.1)
    store.read(serving.assets.user_ids[0])  # connected
    serving.proxy.add(Toxic("dead", "timeout", attributes={"timeout_ms": 0}))
    start = time.monotonic()
    with pytest.raises(Exception, match="[Tt]imeout"):
        store.read(serving.assets.user_ids[0])
    took = time.monotonic() - start
    serving.proxy.clear()
    store.close()
    assert 0.09 <= took < 0.3, took


def _burst(api: Any, users: list[int], gap_s: float) -> list[tuple[float, dict[str, Any]]]:
    """One request per user, ``gap_s`` apart, in parallel; (seconds taken, answer) each."""

    def one(i_user: tuple[int, int]) -> tuple[float, dict[str, Any]]:
        time.sleep(i_user[0] * gap_s)
        start = time.monotonic()
        status, body = predict(api, i_user[1])
        assert status == 200
        return time.monotonic() - start, body

    with ThreadPoolExecutor(len(users)) as pool:
        return list(pool.map(one, enumerate(users)))


def test_an_api_that_falls_behind_sheds_load_to_fallbacks(serving: Any, api: Any) -> None:
    """Admission control: while the oldest prediction in flight has waited longer than 75 ms,
    new requests are answered at once from the fallback path (reason ``overload``)."""
    call(api.url + "/mlchaos/serving-faults", "PUT", {"latency_ms": 700})  # every answer slow
    answers = _burst(api, serving.assets.user_ids[20:25], gap_s=0.12)  # all within 0.5 s
    first, rest = answers[0], answers[1:]
    assert first[1]["fallback"] is None and first[0] >= 0.7  # admitted: paid the latency
    assert {b["fallback"] for _, b in rest} == {"overload"}  # behind a 100+ ms wait: shed
    assert max(took for took, _ in rest) < 0.2
    metrics = http_get(api.url + "/metrics").decode()
    assert 'mlchaos_fallbacks_total{reason="overload"} 4.0' in metrics
    assert "mlchaos_requests_total 5.0" in metrics


@pytest.mark.parametrize("api", [False], indirect=True)
def test_without_the_mitigation_nothing_is_shed(serving: Any, api: Any) -> None:
    call(api.url + "/mlchaos/serving-faults", "PUT", {"latency_ms": 300})
    answers = _burst(api, serving.assets.user_ids[30:34], gap_s=0.1)
    assert all(b["fallback"] is None and took >= 0.3 for took, b in answers)
