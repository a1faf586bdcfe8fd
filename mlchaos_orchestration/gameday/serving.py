"""The example's prediction API (FastAPI on uvicorn).

``POST /predict {"user_id": 123, "amount": 42.0, "hour": 14}`` reads the user's online features
from Redis and answers ``{"score": 0.07, "fallback": false}``. With the mitigation on (default),
feature reads have a short timeout and go through a circuit breaker; when they fail the API
serves the user's last good features (or the store's defaults) and counts a fallback. With it off,
a read waits up to ``slow_timeout_s`` and a failed read is an error (503).

Requests are served on the event loop (one uvicorn worker): feature reads are asynchronous and
share a bounded connection pool, as a production service's would, so a slow store exhausts the
pool rather than a thread pool. With the mitigation on, admission control also sheds load to the
fallback path when the API falls behind (:mod:`.admission`).

Serving faults are set live through ``PUT /mlchaos/serving-faults`` (latency, errors, dropped or
nulled features) and removed by ``DELETE``; the API listens on loopback only.
Prometheus metrics at ``/metrics``. Configured from ``MLCHAOS_SERVING_*`` variables when started
by uvicorn (``--factory mlchaos_orchestration.gameday.serving:app_from_env``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mlchaos_orchestration.gameday.admission import AdmissionControl
from mlchaos_orchestration.gameday.breaker import STATE_CODES, BreakerOpen, CircuitBreaker

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0)
CACHE_USERS = 100_000


@dataclass
class ServingConfig:
    """How the API runs: where features and the model are, and whether the mitigation is on."""

    redis_url: str
    model_path: str
    defaults_path: str | None = None
    mitigation: bool = True
    read_timeout_s: float = 0.05
    slow_timeout_s: float = 1.0
    breaker_failures: int = 5
    breaker_reset_s: float = 1.0
    shed_after_ms: float = 75.0  # mitigation only: shed new requests while one waits longer

    @classmethod
    def from_env(cls) -> ServingConfig:
        env = os.environ
        return cls(
            redis_url=env["MLCHAOS_SERVING_REDIS_URL"],
            model_path=env["MLCHAOS_SERVING_MODEL"],
            defaults_path=env.get("MLCHAOS_SERVING_DEFAULTS") or None,
            mitigation=env.get("MLCHAOS_SERVING_MITIGATION", "on") != "off",
            read_timeout_s=float(env.get("MLCHAOS_SERVING_READ_TIMEOUT_S", "0.05")),
            shed_after_ms=float(env.get("MLCHAOS_SERVING_SHED_AFTER_MS", "75")),
        )

    def env(self) -> dict[str, str]:
        """The variables that reproduce this config in the uvicorn process."""
        out = {
            "MLCHAOS_SERVING_REDIS_URL": self.redis_url,
            "MLCHAOS_SERVING_MODEL": self.model_path,
            "MLCHAOS_SERVING_MITIGATION": "on" if self.mitigation else "off",
            "MLCHAOS_SERVING_READ_TIMEOUT_S": str(self.read_timeout_s),
            "MLCHAOS_SERVING_SHED_AFTER_MS": str(self.shed_after_ms),
        }
        if self.defaults_path:
            out["MLCHAOS_SERVING_DEFAULTS"] = self.defaults_path
        return out


@dataclass
class ServingFaults:
    """Faults acting inside the API: latency and errors on a share of responses, and features
    dropped (absent) or nulled in the model's input."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    rate: float = 1.0  # share of requests the latency applies to
    drop_features: list[str] = field(default_factory=list)
    null_features: list[str] = field(default_factory=list)

    def active(self) -> bool:
        return bool(self.latency_ms or self.error_rate or self.drop_features or self.null_features)


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram(
            "mlchaos_request_latency_seconds",
            "Prediction latency",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.read_latency = Histogram(
            "mlchaos_feature_read_latency_seconds",
            "Online feature read latency",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter("mlchaos_requests", "Prediction requests", registry=r)
        self.errors = Counter("mlchaos_errors", "Failed predictions", ["reason"], registry=r)
        self.fallbacks = Counter(
            "mlchaos_fallbacks", "Predictions served with fallback features", ["reason"], registry=r
        )
        self.breaker = Gauge(
            "mlchaos_breaker_state",
            "Feature-store breaker: 0 closed, 1 half open, 2 open",
            registry=r,
        )


class Predictor:
    """Everything behind ``/predict``, free of web code (tested directly)."""

    def __init__(self, config: ServingConfig) -> None:
        from mlchaos_orchestration.gameday.featurestore import FeatureStore
        from mlchaos_orchestration.gameday.model_source import load_serving_model

        self.config = config
        timeout = config.read_timeout_s if config.mitigation else config.slow_timeout_s
        self.store = FeatureStore(config.redis_url, timeout_s=timeout)
        self.model = load_serving_model(config.model_path)  # joblib file or models:/NAME@ALIAS
        self._linear = LinearScorer.from_pipeline(self.model)
        self.defaults = _load_defaults(config.defaults_path)
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s)
        self.faults = ServingFaults()
        self.metrics = _Metrics()
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()  # event loop only
        self._rng = random.Random(0)

    # ----------------------------------------------------------------------- request path
    async def predict(self, user_id: int, amount: float, hour: int) -> dict[str, Any]:
        """Score one request; raise :class:`PredictionError` (with an HTTP status) on failure."""
        self.metrics.requests.inc()
        try:
            await self._injected_latency()
            features, fallback = await self._features(user_id)
            answer = self._answer(user_id, features, amount, hour, fallback)
            if self.faults.error_rate and self._draw() < self.faults.error_rate:
                raise PredictionError(500, "injected")
            return answer
        except PredictionError as exc:
            self.metrics.errors.labels(exc.reason).inc()
            raise
        finally:
            self.metrics.breaker.set(STATE_CODES[self.breaker.state])

    def shed(self, user_id: int, amount: float, hour: int) -> dict[str, Any]:
        """Answer without reading the store (load shedding): cached features or defaults."""
        self.metrics.requests.inc()
        try:
            features = self._fallback(user_id, "overload")
            return self._answer(user_id, features, amount, hour, "overload")
        except PredictionError as exc:
            self.metrics.errors.labels(exc.reason).inc()
            raise

    def _answer(
        self, user_id: int, features: dict[str, Any], amount: float, hour: int, fallback: str | None
    ) -> dict[str, Any]:
        row = {**features, "amount_log": math.log1p(max(amount, 0.0))}
        row["is_night"] = int(hour < 6 or hour >= 22)
        fallback = self._apply_feature_faults(row) or fallback
        return {"user_id": user_id, "score": self._score(row), "fallback": fallback}

    async def _features(self, user_id: int) -> tuple[dict[str, Any], str | None]:
        t0 = time.perf_counter()
        try:
            if self.config.mitigation:
                found = await self.breaker.acall(lambda: self._read(user_id))
            else:
                found = await self._read(user_id)
        except BreakerOpen:
            return self._fallback(user_id, "breaker_open"), "breaker_open"
        except Exception as exc:  # noqa: BLE001 - any store failure (timeout, reset, protocol)
            if not self.config.mitigation:
                raise PredictionError(503, "feature_store") from exc
            return self._fallback(user_id, "feature_store"), "feature_store"
        finally:
            self.metrics.read_latency.observe(time.perf_counter() - t0)
        if found is None:
            return self._fallback(user_id, "unknown_user"), "unknown_user"
        self._cache[user_id] = found
        self._cache.move_to_end(user_id)
        if len(self._cache) > CACHE_USERS:
            self._cache.popitem(last=False)
        return found, None

    async def _read(self, user_id: int) -> dict[str, Any] | None:
        """One store read bounded by the timeout as a whole (pool wait + round trip)."""
        timeout = self.store.timeout_s
        return await asyncio.wait_for(self.store.aread(user_id), timeout)

    def _fallback(self, user_id: int, reason: str) -> dict[str, Any]:
        self.metrics.fallbacks.labels(reason).inc()
        cached = self._cache.get(user_id)
        return dict(cached) if cached is not None else dict(self.defaults)

    def _apply_feature_faults(self, row: dict[str, Any]) -> str | None:
        faults = self.faults
        if not (faults.drop_features or faults.null_features):
            return None
        for name in faults.drop_features:
            row.pop(name, None)
        for name in faults.null_features:
            row[name] = None
        missing = [k for k in self._inputs() if row.get(k) is None]
        if not missing:
            return None
        if not self.config.mitigation:
            raise PredictionError(422, "missing_features")
        self.metrics.fallbacks.labels("missing_features").inc()
        for name in missing:
            row[name] = self.defaults.get(name)
        return "missing_features"

    def _inputs(self) -> list[str]:
        names = getattr(self.model, "feature_names_in_", None)
        return [str(n) for n in names] if names is not None else sorted(self.defaults)

    def _score(self, row: dict[str, Any]) -> float:
        try:
            if self._linear is not None:
                return round(self._linear.score(row), 6)
            import pandas as pd

            frame = pd.DataFrame([{k: row.get(k) for k in self._inputs()}])
            return round(float(self.model.predict_proba(frame)[0, 1]), 6)
        except Exception as exc:  # noqa: BLE001 - a model that cannot score this row
            raise PredictionError(500, "model") from exc

    async def _injected_latency(self) -> None:
        f = self.faults
        if f.latency_ms and self._draw() < f.rate:
            await asyncio.sleep((f.latency_ms + self._draw() * f.jitter_ms) / 1000.0)

    def _draw(self) -> float:
        return self._rng.random()


class LinearScorer:
    """The example's scaler + one-hot + logistic-regression pipeline as plain arithmetic on one
    row (the same scores as ``predict_proba``, without building a DataFrame per request)."""

    def __init__(
        self, intercept: float, numeric: list[tuple[str, float, float, float]], categorical: dict
    ) -> None:
        self.intercept = intercept
        self.numeric = numeric  # (name, mean, scale, weight)
        self.categorical = categorical  # name -> {value: weight}

    @classmethod
    def from_pipeline(cls, model: Any) -> LinearScorer | None:
        """The scorer for a fitted ``Pipeline([("prep", ColumnTransformer([("num",
        StandardScaler, cols), ("cat", OneHotEncoder, cols)])), ("clf", LogisticRegression)])``,
        or ``None`` for any other model (scored by ``predict_proba``)."""
        try:
            prep, clf = model.named_steps["prep"], model.named_steps["clf"]
            num_cols = prep.transformers_[0][2]
            scaler = prep.named_transformers_["num"]
            cat_cols = prep.transformers_[1][2]
            encoder = prep.named_transformers_["cat"]
            weights = [float(w) for w in clf.coef_[0]]
            intercept = float(clf.intercept_[0])
        except (AttributeError, KeyError, IndexError, TypeError):
            return None
        if len(weights) != len(num_cols) + sum(len(c) for c in encoder.categories_):
            return None
        numeric = [
            (str(c), float(scaler.mean_[i]), float(scaler.scale_[i]), weights[i])
            for i, c in enumerate(num_cols)
        ]
        categorical: dict[str, dict[Any, float]] = {}
        pos = len(num_cols)
        for col, cats in zip(cat_cols, encoder.categories_, strict=True):
            categorical[str(col)] = {v: weights[pos + j] for j, v in enumerate(cats)}
            pos += len(cats)
        return cls(intercept, numeric, categorical)

    def score(self, row: dict[str, Any]) -> float:
        """Probability of the positive class; raises on a missing or null numeric input."""
        z = self.intercept
        for name, mean, scale, weight in self.numeric:
            value = row[name]
            if value is None:
                raise ValueError(f"{name} is null")
            z += weight * (float(value) - mean) / scale
        for name, table in self.categorical.items():
            z += table.get(row.get(name), 0.0)  # unknown category: all-zero one-hot
        return 1.0 / (1.0 + math.exp(-z))


class PredictRequest(BaseModel):
    """Body of ``POST /predict``."""

    user_id: int
    amount: float = Field(ge=0)
    hour: int = Field(12, ge=0, le=23)


class FaultsBody(BaseModel):
    """Body of ``PUT /mlchaos/serving-faults``."""

    latency_ms: float = Field(0.0, ge=0, le=10_000)
    jitter_ms: float = Field(0.0, ge=0, le=10_000)
    error_rate: float = Field(0.0, ge=0, le=1)
    rate: float = Field(1.0, ge=0, le=1)
    drop_features: list[str] = []
    null_features: list[str] = []


class PredictionError(Exception):
    """A request that could not be scored: HTTP ``status`` and a short ``reason`` label."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def _load_defaults(path: str | None) -> dict[str, Any]:
    if path and Path(path).is_file():
        return dict(json.loads(Path(path).read_text()))
    return {}


def create_app(config: ServingConfig) -> Any:
    """The FastAPI app serving ``config``."""
    from fastapi import FastAPI, HTTPException, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    predictor = Predictor(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await predictor.store.warm_up()  # connecting under load is slow: open the pool first
        # Everything loaded so far (model, pandas, sklearn) lives as long as the server: keep it
        # out of the collector, whose full passes over it stalled the event loop ~0.2 s.
        gc.collect()
        gc.freeze()
        yield

    app = FastAPI(title="mlchaos example prediction API", lifespan=lifespan)
    app.state.predictor = predictor
    shed_after = config.shed_after_ms / 1000.0 if config.mitigation else None
    app.add_middleware(AdmissionControl, predictor=predictor, shed_after_s=shed_after)

    @app.post("/predict")
    async def predict(req: PredictRequest) -> dict[str, Any]:
        try:
            return await predictor.predict(req.user_id, req.amount, req.hour)
        except PredictionError as exc:
            raise HTTPException(exc.status, exc.reason) from None

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "mitigation": config.mitigation, "breaker": predictor.breaker.state}

    @app.get("/metrics")
    def metrics() -> Response:
        predictor.metrics.breaker.set(STATE_CODES[predictor.breaker.state])
        return Response(generate_latest(predictor.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.put("/mlchaos/serving-faults")
    def set_faults(spec: FaultsBody) -> dict[str, Any]:
        predictor.faults = ServingFaults(**spec.model_dump())
        return {"active": predictor.faults.active()}

    @app.delete("/mlchaos/serving-faults")
    def clear_faults() -> dict[str, Any]:
        predictor.faults = ServingFaults()
        return {"active": False}

    @app.get("/mlchaos/serving-faults")
    def get_faults() -> dict[str, Any]:
        return vars(predictor.faults)

    return app


def app_from_env() -> Any:
    """uvicorn factory: the app configured from ``MLCHAOS_SERVING_*``."""
    return create_app(ServingConfig.from_env())
