"""The ``mlflow`` target kind: identity, overlap, allowlist, secrets, default tracking store."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos_orchestration.core.safety import check_targets
from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import SafetyError
from mlchaos_orchestration.stores.mlflow_registry import default_tracking_uri


def test_a_registry_target_is_one_model_in_one_tracking_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mlflow.db'}"
    a = Target(kind="mlflow", location=url, table="fraud")
    assert a.describe() == f"registered model fraud at {url}"
    assert a.lock_key() == f"mlflow:{url}#fraud"
    same = url.replace("sqlite:", "sqlite+pysqlite:")  # another driver, the same database
    assert a.overlaps(Target(kind="mlflow", location=same, table="fraud"))
    assert not a.overlaps(Target(kind="mlflow", location=url, table="churn"))
    assert not a.overlaps(Target(kind="sql", location=url, table="fraud"))
    check_targets([a], [f"{url}#fraud"])
    check_targets([a], [f"{url}#*"])
    with pytest.raises(SafetyError):
        check_targets([a], [f"{url}#churn", str(tmp_path)])
    with pytest.raises(ValueError, match="registered model name"):
        Target(kind="mlflow", location=url)
    with pytest.raises(ValueError, match="literal password"):
        Target(kind="mlflow", location="postgresql://u:secret@db/mlflow", table="fraud")
    shown = Target(kind="mlflow", location="postgresql://u:${PW}@db/mlflow", table="fraud")
    assert "${PW}" in shown.location


def test_the_default_tracking_store_is_a_database(
    mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert default_tracking_uri() == f"sqlite:///{mlchaos_home / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://mlflow@db/mlflow")
    assert default_tracking_uri() == "postgresql://mlflow@db/mlflow"
