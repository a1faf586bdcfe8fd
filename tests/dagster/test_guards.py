"""Dagster runs go through the same guards: a target outside the allowlist or a production
environment is refused before anything is touched, and the verdict says so."""

from __future__ import annotations

from typing import Any

import pytest
from dagster_support import DS, tree_digest

from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.dagster import run_experiment_dagster


def _outage(example_env: Any, allowed: list[str]) -> Any:
    return parse_experiment(
        {
            "name": "guarded-outage",
            "gate": "validate_features",
            "consumer": "train_model",
            "safety": {"allowed_targets": allowed},
            "faults": [
                {
                    "fault": "upstream_outage",
                    "target": f"{example_env.raw_root}/ds={{ds}}",
                    "mode": "missing",
                }
            ],
        }
    )


@pytest.mark.parametrize("case", ["outside-allowlist", "production"])
def test_refused_fault_touches_nothing(
    case: str, example_env: Any, chaos_defs: Any, instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    raw = Path(example_env.raw_root)
    before = tree_digest(raw)
    if case == "production":
        monkeypatch.setenv("MLCHAOS_ENVIRONMENT", "production")
        exp = _outage(example_env, [example_env.raw_root])
    else:
        exp = _outage(example_env, ["/nonexistent/elsewhere"])
    verdict = run_experiment_dagster(chaos_defs, exp, partition_key=DS, ds=DS, instance=instance)
    assert verdict["verdict"] == "error"
    assert ("production" if case == "production" else "allowlist") in verdict["reason"]
    assert tree_digest(raw) == before
