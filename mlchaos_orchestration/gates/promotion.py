"""Model gates on an MLflow registry: a promotion gate and a serving-side contract check.

A :class:`ModelContract` says what a servable model looks like: its signature (input and output
columns with types), the run metrics it must carry (with optional bounds), required tags, and for
serving, that the alias points to the newest version the promotion gate validated, not older than
``max_age_days``. Violations raise :class:`~mlchaos_orchestration.gates.gx.GateFailed` (the same
detection as a data gate: halted before the bad model is served).

- :func:`promote` checks a candidate version; on success tags it validated and moves the alias.
- :func:`check_serving` checks the version behind ``models:/<model>@<alias>``;
  :func:`load_for_serving` does it and then loads the model (what a consumer calls).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from mlchaos_orchestration.gates.gx import GateFailed, GateResult

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

__all__ = ["ModelContract", "check_serving", "check_version", "load_for_serving", "promote"]


class ColumnContract(BaseModel):
    """One signature column: its name (None for unnamed tensors) and MLflow type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    type: str


class MetricBound(BaseModel):
    """Bounds a run metric must lie in (either may be left open)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None


class ModelContract(BaseModel):
    """What a model version must be to be promoted and served."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: list[ColumnContract] | None = Field(None, description="expected signature inputs")
    outputs: list[ColumnContract] | None = Field(None, description="expected signature outputs")
    metrics: dict[str, MetricBound] = Field(default_factory=dict, description="required metrics")
    tags: list[str] = Field(default_factory=list, description="required version tag keys")
    validated_tag: str = "validation_status"
    validated_value: str = "passed"
    max_age_days: float | None = Field(None, gt=0, description="serving: oldest version allowed")

    @classmethod
    def load(cls, source: str | Path | dict[str, Any]) -> ModelContract:
        """A contract from a mapping or a YAML file."""
        data = source if isinstance(source, dict) else yaml.safe_load(Path(source).read_text())
        return cls.model_validate(data)


# ------------------------------------------------------------------------------------ checks
def _failure(check: str, observed: Any = None, **kwargs: Any) -> dict[str, Any]:
    return {
        "expectation": check,
        "column": kwargs.get("column"),
        "kwargs": kwargs,
        "observed_value": observed,
        "unexpected_count": None,
        "unexpected_percent": None,
        "exception": None,
    }


def _columns(schema: Any) -> list[ColumnContract]:
    out = []
    for spec in schema.to_dict() if schema is not None else []:
        kind = spec.get("type")
        if kind == "tensor":
            kind = f"tensor:{spec.get('tensor-spec', {}).get('dtype')}"
        out.append(ColumnContract(name=spec.get("name"), type=str(kind)))
    return out


def signature_failures(signature: Any, contract: ModelContract) -> list[dict[str, Any]]:
    """Failures of a signature (``mlflow.models.ModelSignature`` or None) against the contract."""
    if signature is None:
        return [_failure("model_signature_present", None)]
    failures = []
    for side, expected in (("inputs", contract.inputs), ("outputs", contract.outputs)):
        if expected is None:
            continue
        found = _columns(getattr(signature, side))
        if found != expected:
            failures.append(
                _failure(
                    f"model_signature_{side}_match",
                    [c.model_dump() for c in found],
                    expected=[c.model_dump() for c in expected],
                )
            )
    return failures


def _metric_failures(metrics: dict[str, float], contract: ModelContract) -> list[dict[str, Any]]:
    failures = []
    for key, bound in contract.metrics.items():
        value = metrics.get(key)
        if value is None:
            failures.append(_failure("model_metric_present", None, metric=key))
        elif (bound.min is not None and value < bound.min) or (
            bound.max is not None and value > bound.max
        ):
            failures.append(
                _failure("model_metric_between", value, metric=key, min=bound.min, max=bound.max)
            )
    return failures


def _serving_failures(
    client: MlflowClient, version: ModelVersion, contract: ModelContract
) -> list[dict[str, Any]]:
    failures = []
    tag, value = contract.validated_tag, contract.validated_value
    if version.tags.get(tag) != value:
        failures.append(_failure("model_version_validated", version.tags.get(tag), tag=tag))
    else:  # a validated version: is it the newest one (no rollback)?
        name = version.name.replace("'", "\\'")
        versions = client.search_model_versions(f"name = '{name}'")
        latest = max(int(v.version) for v in versions if v.tags.get(tag) == value)
        if int(version.version) != latest:
            failures.append(
                _failure("model_version_is_latest_validated", int(version.version), latest=latest)
            )
    if contract.max_age_days is not None:
        age = (time.time() * 1000 - version.creation_timestamp) / 86_400_000
        if age > contract.max_age_days:
            failures.append(
                _failure("model_version_age_below", round(age, 2), max_days=contract.max_age_days)
            )
    return failures


def check_version(
    client: MlflowClient, model: str, version: str | int, contract: ModelContract, *, serving: bool
) -> GateResult:
    """Check one version: signature, metrics, tags; with ``serving`` also validation and age."""
    from mlflow.models import Model

    start = time.monotonic()
    mv = client.get_model_version(model, str(version))
    failures: list[dict[str, Any]] = []
    try:
        signature = Model.load(client.get_model_version_download_uri(model, str(version))).signature
    except Exception as exc:  # noqa: BLE001 - model files gone: the check fails, it does not crash
        failures.append({**_failure("model_files_readable"), "exception": str(exc)[:200]})
        signature = None
    failures += signature_failures(signature, contract) if not failures else []
    metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
    failures += _metric_failures(metrics, contract)
    failures += [
        _failure("model_tag_present", None, tag=t) for t in contract.tags if t not in mv.tags
    ]
    if serving:
        failures += _serving_failures(client, mv, contract)
    checks = 3 + len(contract.metrics) + len(contract.tags) + (3 if serving else 0)
    return GateResult(
        success=not failures,
        evaluated=checks,
        duration_s=round(time.monotonic() - start, 4),
        suite=f"model contract {model} v{mv.version}",
        failed=failures,
    )


def _client(tracking_uri: str | None) -> MlflowClient:
    import os

    from mlflow import MlflowClient

    from mlchaos_orchestration.stores.mlflow_registry import default_tracking_uri

    uri = os.path.expandvars(tracking_uri or default_tracking_uri())
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


# ------------------------------------------------------------------------------------ entry points
def promote(
    model: str,
    version: str | int,
    alias: str,
    contract: ModelContract,
    *,
    tracking_uri: str | None = None,
) -> GateResult:
    """Promotion gate: check ``version``; raise GateFailed, or tag it validated and alias it."""
    client = _client(tracking_uri)
    result = check_version(client, model, version, contract, serving=False)
    if not result.success:
        raise GateFailed(result)
    client.set_model_version_tag(
        model, str(version), contract.validated_tag, contract.validated_value
    )
    client.set_registered_model_alias(model, alias, str(version))
    return result


def check_serving(
    model: str, alias: str, contract: ModelContract, *, tracking_uri: str | None = None
) -> GateResult:
    """Serving-side contract check of ``models:/<model>@<alias>``; raises GateFailed."""
    client = _client(tracking_uri)
    version = client.get_model_version_by_alias(model, alias)
    result = check_version(client, model, version.version, contract, serving=True)
    result.suite = f"serving contract {model}@{alias} (v{version.version})"
    if not result.success:
        raise GateFailed(result)
    return result


def load_for_serving(
    model: str, alias: str, contract: ModelContract, *, tracking_uri: str | None = None
) -> Any:
    """Check the aliased version against the contract, then load it (``mlflow.pyfunc``).

    The version is resolved once: the model loaded is the version that was checked.
    """
    import mlflow.pyfunc

    client = _client(tracking_uri)
    version = client.get_model_version_by_alias(model, alias).version
    result = check_version(client, model, version, contract, serving=True)
    result.suite = f"serving contract {model}@{alias} (v{version})"
    if not result.success:
        raise GateFailed(result)
    return mlflow.pyfunc.load_model(client.get_model_version_download_uri(model, str(version)))
