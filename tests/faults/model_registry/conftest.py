"""A real MLflow registry (SQLite tracking store, model files in a temp dir) per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos_orchestration.testing.mlflow_fixture import Registry, build_registry


@pytest.fixture
def registry(tmp_path: Path, mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A registry of 4 versions (v1-v3 validated, alias ``champion`` on v3, v4 a candidate)."""
    reg = build_registry(tmp_path / "registry")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", reg.tracking_uri)  # the faults' default store
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", f"{reg.tracking_uri}#*")
    return reg
