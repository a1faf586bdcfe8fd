"""The promotion gate and the serving-side contract check on a real MLflow registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec
from mlchaos_orchestration.core.session import apply_fault, restore_lease
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.model_registry import ModelSchemaChange
from mlchaos_orchestration.gates.gx import GateFailed
from mlchaos_orchestration.gates.promotion import (
    ModelContract,
    check_serving,
    load_for_serving,
    promote,
)
from mlchaos_orchestration.testing.mlflow_fixture import INPUTS, OUTPUT, Registry

CONTRACT = {
    "inputs": [{"name": n, "type": t} for n, t in INPUTS],
    "outputs": [{"name": OUTPUT, "type": "double"}],
    "metrics": {"auc": {"min": 0.6}},
    "tags": ["trained_on"],
}


def _client(reg: Registry) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)


def test_promotion_validates_and_aliases_the_candidate(registry: Registry) -> None:
    result = promote(registry.model, 4, registry.alias, ModelContract(**CONTRACT))
    assert result.success and result.evaluated == 5
    version = _client(registry).get_model_version_by_alias(registry.model, registry.alias)
    assert int(version.version) == 4 and version.tags["validation_status"] == "passed"
    assert check_serving(registry.model, registry.alias, ModelContract(**CONTRACT)).success


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"metrics": {"auc": {"min": 0.99}}}, "model_metric_between"),
        ({"metrics": {"f1": {}}}, "model_metric_present"),
        ({"tags": ["owner"]}, "model_tag_present"),
        ({"outputs": [{"name": "score", "type": "double"}]}, "model_signature_outputs_match"),
        ({"inputs": [{"name": "amount", "type": "double"}]}, "model_signature_inputs_match"),
    ],
)
def test_promotion_refuses_a_candidate_that_breaks_the_contract(
    registry: Registry, change: dict[str, Any], check: str
) -> None:
    with pytest.raises(GateFailed) as caught:
        promote(registry.model, 4, registry.alias, ModelContract(**{**CONTRACT, **change}))
    assert [f["expectation"] for f in caught.value.result.failed] == [check]
    assert check in str(caught.value)
    version = _client(registry).get_model_version(registry.model, "4")
    assert "validation_status" not in version.tags
    aliased = _client(registry).get_model_version_by_alias(registry.model, registry.alias)
    assert int(aliased.version) == 3  # the alias did not move


def test_the_consumer_serves_the_checked_model_and_never_a_bad_one(
    registry: Registry, mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc
    import pandas as pd

    contract = ModelContract.load(CONTRACT)
    model = load_for_serving(registry.model, registry.alias, contract)
    scored = model.predict(pd.DataFrame({"amount": [10.0], "age": [30], "country": ["FR"]}))
    assert list(scored.columns) == [OUTPUT] and 0.0 < scored[OUTPUT].iloc[0] < 1.0

    fault = ModelSchemaChange(model=registry.model, alias=registry.alias)
    ledger = Ledger()
    applied = apply_fault(ledger, fault, ApplyContext(seed=1), run_id="r", safety=SafetySpec())
    loads: list[str] = []
    monkeypatch.setattr(mlflow.pyfunc, "load_model", lambda uri, **_: loads.append(uri))
    with pytest.raises(GateFailed, match="model_signature_outputs_match"):
        load_for_serving(registry.model, registry.alias, contract)
    assert loads == []  # halted before the bad model was loaded
    assert restore_lease(ledger, applied.lease.id).restored


def test_a_contract_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text("outputs: [{name: p, type: double}]\nmetrics: {auc: {min: 0.7}}\n")
    contract = ModelContract.load(path)
    assert contract.outputs[0].name == "p" and contract.metrics["auc"].min == 0.7
    with pytest.raises(ValueError):
        ModelContract.load({"metrics": {"auc": {"minimum": 1}}})
