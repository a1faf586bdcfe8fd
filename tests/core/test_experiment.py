"""Experiment files: valid specs load; every problem is reported with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos_orchestration.core.experiment import load_experiments, parse_experiment
from mlchaos_orchestration.errors import SpecError

GOOD = """
version: 1
defaults:
  seed: 7
  safety: {ttl_s: 60, allowed_targets: ["/tmp/x"]}
experiments:
  - name: control
    control: true
  - name: nulls-amount
    hypothesis: the gate catches nulls in amount
    faults:
      - {fault: nulls, columns: [amount], fraction: 0.2, at: validate}
    expect: caught
  - name: outage
    safety: {ttl_s: 30}
    faults:
      - {fault: upstream_outage, target: "${RAW_ROOT}/events", mode: missing}
"""


def test_valid_file_loads_with_defaults_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAW_ROOT", "/tmp/x")
    spec = load_experiments(GOOD)
    assert [e.name for e in spec.experiments] == ["control", "nulls-amount", "outage"]
    nulls = spec.get("nulls-amount")
    assert nulls.seed == 7 and nulls.faults[0].at == "validate"
    assert nulls.faults[0].fault.fraction == 0.2
    outage = spec.get("outage")
    # safety defaults are merged key by key, not replaced
    assert outage.safety.ttl_s == 30 and outage.safety.allowed_targets == ["/tmp/x"]
    assert outage.faults[0].fault.target == "/tmp/x/events"  # ${VAR} expanded in locations


def test_every_problem_is_reported_with_its_path() -> None:
    text = """
experiments:
  - name: a
    faults: [{fault: nulls, columns: [x], fraction: 0.5}]
  - name: b
    faults: [{fault: nulls, columns: [x], fraction: 0.5}]
  - name: c
    faults:
      - {fault: nulls, columns: [x], fraction: 3}
      - {fault: nullz, columns: [x]}
      - {fault: drift, columns: [x], kk: 2}
    seed: -1
"""
    with pytest.raises(SpecError) as err:
        load_experiments(text)
    problems = err.value.problems
    assert "experiments[2].faults[0].fraction: must be <= 1" in problems
    assert any(
        p.startswith("experiments[2].faults[1].fault: unknown fault 'nullz'")
        and "did you mean 'nulls'" in p
        for p in problems
    )
    assert any(p.startswith("experiments[2].faults[2].kk: unknown field") for p in problems)
    assert "experiments[2].seed: must be >= 0" in problems
    assert len(problems) == 4


def test_invalid_yaml_is_one_line_with_position() -> None:
    with pytest.raises(SpecError) as err:
        load_experiments("experiments: [\n  - {name: a\n")
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith("invalid YAML: line")


@pytest.mark.parametrize(
    "raw, needle",
    [
        ("[]", "top level: must be a mapping"),
        ("experiments: []", "experiments: must be a non-empty list"),
        ("experiments: [{name: 'bad name!', control: true}]", "experiments[0].name"),
        ("experiments: [{name: a}]", "needs at least one fault"),
        ("experimentz: []", "did you mean 'experiments'"),
        ("experiments: [{name: a, control: true}, {name: a, control: true}]", "duplicate name 'a'"),
        (
            "experiments: [{name: a, faults: [{fault: nulls, columns: [x], fraction: .nan}]}]",
            "experiments[0].faults[0].fraction",
        ),
    ],
)
def test_bad_specs_are_refused(raw: str, needle: str) -> None:
    with pytest.raises(SpecError) as err:
        load_experiments(raw)
    assert any(needle in p for p in err.value.problems), err.value.problems
    assert all("\n" not in p for p in err.value.problems)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_experiments(tmp_path / "nope.yaml")


def test_parse_single_experiment_for_params() -> None:
    exp = parse_experiment({"name": "x", "faults": [{"fault": "drop_column", "columns": ["a"]}]})
    assert exp.faults[0].name == "drop_column"
    assert exp.spec()["faults"][0]["fault"] == "drop_column"
