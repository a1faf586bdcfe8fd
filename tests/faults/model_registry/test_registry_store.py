"""The registry store on its own: a backup is complete before it counts, a restore may be re-run
(after a kill at any point) and trusts only the backup; PostgreSQL tracking stores work too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec
from mlchaos_orchestration.core.session import apply_fault, restore_lease
from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.model_registry import ModelSchemaChange, RegistryMetadataMissing
from mlchaos_orchestration.stores.base import get_store
from mlchaos_orchestration.stores.mlflow_registry import MlflowRegistryStore
from mlchaos_orchestration.testing.mlflow_fixture import Registry, build_registry, registry_state


def _target(reg: Registry) -> Target:
    return Target(kind="mlflow", location=reg.tracking_uri, table=reg.model)


def test_restore_undoes_a_half_applied_fault_and_can_be_repeated(
    registry: Registry, mlchaos_home: Path
) -> None:
    target = _target(registry)
    store = get_store(target)
    assert isinstance(store, MlflowRegistryStore)
    before, checksum = registry_state(registry), store.checksum(target)
    ref = store.backup(target, "b1")
    assert store.backup(target, "b1") == ref  # a completed backup is never redone
    # faults killed half-way: a new version registered and aliased, its metadata half gone
    ModelSchemaChange(model=registry.model).apply(ApplyContext(seed=1, extra={"backup_id": "b1"}))
    RegistryMetadataMissing(model=registry.model, remove=["tags", "signature"]).apply(
        ApplyContext(seed=1)
    )
    assert store.checksum(target) != checksum
    store.restore(target, ref)
    store.restore(target, ref)  # idempotent
    assert store.checksum(target) == checksum
    assert registry_state(registry) == before
    store.discard(ref)
    assert not (mlchaos_home / "backups" / "b1").exists()


def test_a_checksum_covers_aliases_tags_and_model_files(registry: Registry) -> None:
    from mlflow import MlflowClient

    target = _target(registry)
    store = get_store(target)
    base = store.checksum(target)
    assert {"rows:registered_model_aliases", "rows:model_version_tags", "file:v3/MLmodel"} <= set(
        base
    )
    client = MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)
    client.set_model_version_tag(registry.model, "1", "note", "x")
    changed = store.checksum(target)
    assert {k for k in base if base[k] != changed[k]} == {"rows:model_version_tags"}
    assert store.checksum(Target(kind="mlflow", location=registry.tracking_uri, table="no")) == {}


def test_a_missing_backup_is_an_error_not_a_silent_success(registry: Registry) -> None:
    from mlchaos_orchestration.errors import RestoreError

    store = get_store(_target(registry))
    with pytest.raises(RestoreError, match="missing"):
        store.restore(_target(registry), {"backup_id": "gone", "folder": "/nonexistent/gone"})


def test_faults_restore_exactly_on_a_postgresql_tracking_store(
    tmp_path: Path, mlchaos_home: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = build_registry(tmp_path / "registry", tracking_uri=pg_url)
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", f"{pg_url}#*")
    before = registry_state(registry)
    for fault in (
        ModelSchemaChange(model=registry.model, tracking_uri=pg_url),
        RegistryMetadataMissing(model=registry.model, tracking_uri=pg_url),
    ):
        ledger = Ledger()
        applied = apply_fault(ledger, fault, ApplyContext(seed=1), run_id="r", safety=SafetySpec())
        assert registry_state(registry) != before
        outcome: Any = restore_lease(ledger, applied.lease.id)
        assert outcome.restored, outcome.error
        assert registry_state(registry) == before
