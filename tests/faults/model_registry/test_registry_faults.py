"""Registry faults through the real session: each changes what ``models:/<model>@champion``
serves, the serving contract check catches it, and the restore brings back every version, alias,
tag, description, metric, table row and model file exactly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec
from mlchaos_orchestration.core.session import apply_fault, restore_lease
from mlchaos_orchestration.core.verdict import is_check_failure
from mlchaos_orchestration.errors import SafetyError, TargetError
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.catalog import get_fault_class
from mlchaos_orchestration.gates.gx import GateFailed
from mlchaos_orchestration.gates.promotion import ModelContract, check_serving
from mlchaos_orchestration.testing.mlflow_fixture import INPUTS, OUTPUT, Registry, registry_state

CONTRACT = ModelContract(
    inputs=[{"name": n, "type": t} for n, t in INPUTS],
    outputs=[{"name": OUTPUT, "type": "double"}],
    metrics={"auc": {"min": 0.6}, "accuracy": {}},
    tags=["trained_on"],
    max_age_days=75,  # versions are 0, 30, 60 and 90 days old (v4 ... v1)
)

# fault, params, version the alias points to afterwards, checks the serving contract fails
CASES = [
    ("model_schema_change", {}, 5, {"model_signature_outputs_match"}),
    ("model_schema_change", {"change": "output_name"}, 5, {"model_signature_outputs_match"}),
    ("model_schema_change", {"change": "drop_input"}, 5, {"model_signature_inputs_match"}),
    (
        "registry_metadata_missing",
        {},
        3,
        {
            "model_signature_present",
            "model_metric_present",
            "model_tag_present",
            "model_version_validated",
        },
    ),
    ("registry_metadata_missing", {"remove": ["metrics"]}, 3, {"model_metric_present"}),
    ("alias_moved", {}, 2, {"model_version_is_latest_validated"}),
    ("alias_moved", {"to": "unvalidated"}, 4, {"model_version_validated"}),
    (
        "stale_model",
        {},
        1,
        {"model_version_is_latest_validated", "model_version_age_below"},
    ),
    ("stale_model", {"older_than_days": 45}, 2, {"model_version_is_latest_validated"}),
]


def _ctx() -> ApplyContext:
    return ApplyContext(seed=7, run_id="run1")


def _alias(reg: Registry) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)
    return int(client.get_model_version_by_alias(reg.model, reg.alias).version)


def _failed_checks(reg: Registry) -> set[str]:
    with pytest.raises(GateFailed) as caught:
        check_serving(reg.model, reg.alias, CONTRACT, tracking_uri=reg.tracking_uri)
    assert is_check_failure(type(caught.value).__name__)
    return {f["expectation"] for f in caught.value.result.failed}


@pytest.mark.parametrize(("name", "params", "aliased", "failed"), CASES)
def test_fault_is_caught_by_the_serving_check_and_restored_exactly(
    registry: Registry,
    mlchaos_home: Path,
    name: str,
    params: dict[str, Any],
    aliased: int,
    failed: set[str],
) -> None:
    assert check_serving(
        registry.model, registry.alias, CONTRACT, tracking_uri=registry.tracking_uri
    )
    before = registry_state(registry)
    fault = get_fault_class(name).model_validate({"target": registry.target, **params})
    ledger = Ledger()
    start = time.monotonic()
    applied = apply_fault(ledger, fault, _ctx(), run_id="run1", safety=SafetySpec())
    took = time.monotonic() - start
    assert took < 10, f"{name} took {took:.2f}s to apply"

    assert _alias(registry) == aliased
    assert _failed_checks(registry) == failed
    assert registry_state(registry) != before
    (event,) = [e for e in ledger.events("run1") if e.kind == "fault_applied"]
    assert event.data["targets"] == [
        f"registered model {registry.model} at {registry.tracking_uri}"
    ]

    outcome = restore_lease(ledger, applied.lease.id)
    assert outcome.restored, outcome.error
    assert registry_state(registry) == before
    assert not list((mlchaos_home / "backups").iterdir())
    assert check_serving(
        registry.model, registry.alias, CONTRACT, tracking_uri=registry.tracking_uri
    )


def test_the_target_shorthand_and_its_errors() -> None:
    fault = get_fault_class("alias_moved").model_validate({"target": "mlflow://m@prod"})
    assert (fault.model, fault.alias) == ("m", "prod")
    assert (
        get_fault_class("stale_model").model_validate({"target": "mlflow://m"}).alias == "champion"
    )
    with pytest.raises(ValidationError, match="mlflow://"):
        get_fault_class("stale_model").model_validate({"target": "s3://m@prod"})
    with pytest.raises(ValidationError):
        get_fault_class("alias_moved").model_validate({"model": "m", "to": "newest"})


def test_a_target_outside_the_allowlist_is_refused_untouched(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", "sqlite:///elsewhere.db#*")
    before = registry_state(registry)
    fault = get_fault_class("alias_moved").model_validate({"target": registry.target})
    with pytest.raises(SafetyError, match="not in the allowlist"):
        apply_fault(Ledger(), fault, _ctx(), run_id="run1", safety=SafetySpec())
    assert registry_state(registry) == before


def test_a_fault_that_cannot_act_changes_nothing(registry: Registry, mlchaos_home: Path) -> None:
    before = registry_state(registry)
    fault = get_fault_class("alias_moved").model_validate({"target": registry.target, "to": 99})
    with pytest.raises(TargetError, match="no version matches"):
        apply_fault(Ledger(), fault, _ctx(), run_id="run1", safety=SafetySpec())
    assert registry_state(registry) == before
    missing = get_fault_class("stale_model").model_validate(
        {"target": "mlflow://nope@champion", "tracking_uri": registry.tracking_uri}
    )
    with pytest.raises(TargetError, match="no such registered model"):
        apply_fault(Ledger(), missing, _ctx(), run_id="run2", safety=SafetySpec())
    assert registry_state(registry) == before
    assert not list((mlchaos_home / "backups").iterdir())
