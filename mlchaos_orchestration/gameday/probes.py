"""Steady-state probes: PromQL against a real Prometheus, or the same quantities computed from
the API's own ``/metrics`` scrapes when no Prometheus runs (the embedded default).

A probe has a ``kind`` (what it measures), a window and a tolerance (``max`` and/or ``min``).
``role: slo`` probes decide whether the steady state held; ``role: info`` probes (e.g. the
fallback ratio) are recorded and used to tell a graceful degradation from a clean hold.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlchaos_orchestration.gameday.stack import http_get

Kind = Literal["latency_p99", "error_ratio", "fallback_ratio", "request_rate"]
LATENCY = "mlchaos_request_latency_seconds"
PROMQL = {
    "latency_p99": (
        "1000 * histogram_quantile(0.99, sum by (le) (rate(" + LATENCY + "_bucket[{w}s])))"
    ),
    "error_ratio": (
        "(sum(rate(mlchaos_errors_total[{w}s])) or vector(0))"
        " / sum(rate(mlchaos_requests_total[{w}s]))"
    ),
    "fallback_ratio": (
        "(sum(rate(mlchaos_fallbacks_total[{w}s])) or vector(0))"
        " / sum(rate(mlchaos_requests_total[{w}s]))"
    ),
    "request_rate": "sum(rate(mlchaos_requests_total[{w}s]))",
}
UNITS = {"latency_p99": "ms", "error_ratio": "", "fallback_ratio": "", "request_rate": "req/s"}


class ProbeSpec(BaseModel):
    """One probe and its tolerance."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Kind
    max: float | None = None
    min: float | None = None
    window_s: int = Field(5, ge=2, le=300)
    role: Literal["slo", "info"] = "slo"
    promql: str | None = Field(None, description="override the query sent to Prometheus")

    @model_validator(mode="after")
    def _tolerance(self) -> ProbeSpec:
        if self.role == "slo" and self.max is None and self.min is None:
            raise ValueError(f"probe {self.name}: an slo probe needs max or min")
        return self

    def query(self) -> str:
        return self.promql or PROMQL[self.kind].format(w=self.window_s)

    def within(self, value: float | None) -> bool | None:
        """True/False against the tolerance; None when there is no value to judge."""
        if value is None or math.isnan(value):
            return None
        if self.max is not None and value > self.max:
            return False
        return not (self.min is not None and value < self.min)


@dataclass
class Sample:
    """One probe reading."""

    t: float
    probe: str
    value: float | None
    ok: bool | None
    source: str


class PrometheusSource:
    """Instant PromQL queries against a Prometheus server's HTTP API."""

    name = "prometheus"

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def refresh(self) -> None:
        """Prometheus scrapes by itself."""

    def value(self, probe: ProbeSpec) -> float | None:
        qs = urllib.parse.urlencode({"query": probe.query()})
        body = json.loads(http_get(f"{self.url}/api/v1/query?{qs}"))
        result = body.get("data", {}).get("result", [])
        if body.get("status") != "success" or not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) or math.isinf(value) else value


class MetricsSource:
    """The same quantities from the API's ``/metrics``, scraped on each :meth:`refresh`.

    Rates and the p99 are computed over the window from the difference between the newest
    scrape and the newest one at least ``window_s`` older, like ``rate()`` and
    ``histogram_quantile()`` do (linear interpolation inside the bucket)."""

    name = "metrics"

    def __init__(self, metrics_url: str) -> None:
        self.url = metrics_url
        self.scrapes: list[tuple[float, dict[str, Any]]] = []

    def refresh(self) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        text = http_get(self.url).decode()
        flat: dict[str, Any] = {"buckets": {}}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == LATENCY + "_bucket":
                    le = float(s.labels["le"])
                    flat["buckets"][le] = flat["buckets"].get(le, 0.0) + s.value
                elif s.name.endswith("_total"):
                    flat[s.name] = flat.get(s.name, 0.0) + s.value
        self.scrapes.append((time.monotonic(), flat))
        del self.scrapes[:-600]

    def _pair(self, window_s: int) -> tuple[dict[str, Any], dict[str, Any], float] | None:
        if len(self.scrapes) < 2:
            return None
        t1, new = self.scrapes[-1]
        older = [s for s in self.scrapes[:-1] if t1 - s[0] >= window_s - 0.5]
        t0, old = older[-1] if older else self.scrapes[0]
        return (old, new, t1 - t0) if t1 > t0 else None

    def value(self, probe: ProbeSpec) -> float | None:
        pair = self._pair(probe.window_s)
        if pair is None:
            return None
        old, new, dt = pair

        def delta(key: str) -> float:
            return float(new.get(key, 0.0) - old.get(key, 0.0))

        requests = delta("mlchaos_requests_total")
        if probe.kind == "request_rate":
            return requests / dt
        if probe.kind in ("error_ratio", "fallback_ratio"):
            key = (
                "mlchaos_errors_total" if probe.kind == "error_ratio" else "mlchaos_fallbacks_total"
            )
            return delta(key) / requests if requests > 0 else None
        buckets = {
            le: new["buckets"].get(le, 0.0) - old["buckets"].get(le, 0.0) for le in new["buckets"]
        }
        q = quantile(0.99, buckets)
        return None if q is None else q * 1000.0


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """``histogram_quantile`` over cumulative bucket counts ``{le: count}`` (``inf`` included)."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return prev_le  # as Prometheus: the upper bound of the last finite bucket
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


class Probes:
    """Reads every probe from one source at a time; keeps every sample."""

    def __init__(self, specs: list[ProbeSpec], source: PrometheusSource | MetricsSource) -> None:
        self.specs = specs
        self.source = source
        self.samples: list[Sample] = []

    def read(self) -> list[Sample]:
        """One reading of every probe now."""
        self.source.refresh()
        now = time.time()
        out = []
        for spec in self.specs:
            try:
                value = self.source.value(spec)
            except OSError:
                value = None
            if value is not None and spec.kind.endswith("_ratio"):
                value = min(1.0, max(0.0, value))  # rate() extrapolation can overshoot 1
            out.append(Sample(now, spec.name, value, spec.within(value), self.source.name))
        self.samples.extend(out)
        return out
