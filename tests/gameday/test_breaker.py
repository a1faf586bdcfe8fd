from __future__ import annotations

import pytest

from mlchaos_orchestration.gameday.breaker import BreakerOpen, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fail() -> None:
    raise TimeoutError("slow store")


def test_opens_after_consecutive_failures_then_fails_fast() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=2.0, clock=clock)
    calls = []
    for _ in range(3):
        with pytest.raises(TimeoutError):
            breaker.call(_fail)
    assert breaker.state == "open" and breaker.opened == 1
    with pytest.raises(BreakerOpen):
        breaker.call(lambda: calls.append(1))
    assert calls == []  # not attempted while open


def test_half_open_trial_closes_or_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=1.0, clock=clock)
    with pytest.raises(TimeoutError):
        breaker.call(_fail)
    clock.now = 1.5
    assert breaker.state == "half_open"
    with pytest.raises(TimeoutError):
        breaker.call(_fail)  # the trial failed: open again, for a full timeout
    assert breaker.state == "open" and breaker.opened == 2
    clock.now = 2.6
    assert breaker.call(lambda: 42) == 42
    assert breaker.state == "closed"


def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=1.0, clock=Clock())
    with pytest.raises(TimeoutError):
        breaker.call(_fail)
    breaker.call(lambda: None)
    with pytest.raises(TimeoutError):
        breaker.call(_fail)
    assert breaker.state == "closed"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
