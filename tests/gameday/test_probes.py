from __future__ import annotations

import math

import pytest

from mlchaos_orchestration.gameday.probes import ProbeSpec, quantile


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    # 100 observations: 50 under 0.1 s, 40 in (0.1, 0.2], 10 in (0.2, 0.5]
    buckets = {0.1: 50.0, 0.2: 90.0, 0.5: 100.0, math.inf: 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.15)
    assert quantile(0.99, buckets) == pytest.approx(0.2 + 0.3 * 0.9)
    assert quantile(0.99, {0.1: 0.0, math.inf: 0.0}) is None


def test_quantile_in_the_inf_bucket_is_the_last_finite_bound() -> None:
    assert quantile(0.99, {0.1: 10.0, 0.2: 10.0, math.inf: 20.0}) == pytest.approx(0.2)


def test_tolerance_and_missing_data() -> None:
    p99 = ProbeSpec(name="p99", kind="latency_p99", max=200)
    assert p99.within(150.0) is True
    assert p99.within(250.0) is False
    assert p99.within(None) is None  # no requests: nothing to judge
    rate = ProbeSpec(name="rps", kind="request_rate", min=10)
    assert rate.within(5.0) is False


def test_slo_probe_needs_a_tolerance_and_promql_uses_the_window() -> None:
    with pytest.raises(ValueError, match="needs max or min"):
        ProbeSpec(name="p99", kind="latency_p99")
    spec = ProbeSpec(name="p99", kind="latency_p99", max=200, window_s=7)
    assert "[7s]" in spec.query() and "histogram_quantile(0.99" in spec.query()
