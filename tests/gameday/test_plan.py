from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos_orchestration.errors import SpecError
from mlchaos_orchestration.gameday.actions import LoadAction
from mlchaos_orchestration.gameday.plan import DriftExperiment, load_gameday

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "mlchaos_orchestration" / "examples" / "gameday.yaml"
)


def test_the_example_file_is_valid() -> None:
    plan = load_gameday(EXAMPLE)
    serving = [e for e in plan.experiments if not isinstance(e, DriftExperiment)]
    drift = [e for e in plan.experiments if isinstance(e, DriftExperiment)]
    names = [e.name for e in serving]
    assert names == ["redis-latency-mitigated", "redis-latency-unmitigated", "compound"]
    assert plan.gameday.stop_conditions and plan.gameday.stop_conditions.consecutive == 3
    assert [e.mitigation for e in serving] == [True, False, True]
    assert [(e.alerts, e.expect) for e in drift] == [
        (True, "caught"),
        (False, "unalerted"),
        (True, "caught"),
    ]
    assert [e.fault().name for e in drift] == ["traffic_drift", "traffic_drift", "feedback_skew"]


def test_every_problem_is_listed_one_per_line(tmp_path: Path) -> None:
    bad = tmp_path / "gd.yaml"
    bad.write_text(
        "gameday:\n  steady_state:\n    - {name: p99, kind: latency_p99}\n"
        "  stop_conditions: {probe: nope}\n"
        "experiments:\n  - name: x\n    method:\n      - {action: teleport}\n"
    )
    with pytest.raises(SpecError) as err:
        load_gameday(bad)
    text = "\n".join(err.value.problems)
    assert "needs max or min" in text
    assert "teleport" in text or "action" in text
    assert all("\n" not in p for p in err.value.problems)


def test_load_rate_in_percent_of_the_measured_peak() -> None:
    assert LoadAction(action="load", rate="150%").requests_per_s(120) == 180
    assert LoadAction(action="load", rate=42).requests_per_s(0) == 42
    with pytest.raises(SpecError, match="needs a measured peak"):
        LoadAction(action="load", rate="150%").requests_per_s(0)
    with pytest.raises(SpecError, match="percentage"):
        LoadAction(action="load", rate="fast").requests_per_s(10)
