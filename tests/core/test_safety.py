"""Guards: allowlist, production, symlinks and '..' escapes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlchaos_orchestration.core.safety import SafetySpec, check_environment, check_targets
from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import SafetyError
from mlchaos_orchestration.settings import get_settings


def test_local_allowlist_symlink_and_dotdot(tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    (root / "a").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    allow = [str(root)]
    check_targets([Target.parse(str(root / "a"))], allow)
    for bad in (
        str(outside),
        str(root / "link"),
        str(root / "link" / "x"),
        str(root) + "/../outside",
        str(tmp_path / "allowed2"),
    ):
        with pytest.raises(SafetyError):
            check_targets([Target(kind="local", location=bad)], allow)


def test_empty_allowlist_refuses_everything(tmp_path: Path) -> None:
    with pytest.raises(SafetyError, match="no allowed targets"):
        check_targets([Target.parse(str(tmp_path))], [])


def test_s3_and_sql_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", "postgresql://u:other@h/db")
    allow = ["s3://bucket/data/", "postgresql://u:pw@h/db#features"]
    check_targets([Target.parse("s3://bucket/data/events/")], allow)
    for bad in ("s3://bucket/database/x", "s3://bucket2/data/x", "s3://other/data/"):
        with pytest.raises(SafetyError):
            check_targets([Target.parse(bad)], allow)
    check_targets([Target.parse({"url": "${DB_URL}", "table": "features"})], allow)
    with pytest.raises(SafetyError):
        check_targets([Target.parse({"url": "${DB_URL}", "table": "users"})], allow)
    with pytest.raises(ValueError, match="literal password"):
        Target.parse({"url": "postgresql://u:pw@h/db", "table": "features"})


def test_production_needs_both_opt_ins() -> None:
    prod = get_settings({"MLCHAOS_ENVIRONMENT": "production", "MLCHAOS_HOME": "/tmp"})
    with pytest.raises(SafetyError, match="production"):
        check_environment(prod, SafetySpec())
    with pytest.raises(SafetyError):
        check_environment(prod, SafetySpec(allow_production=True))
    opted = get_settings(
        {
            "MLCHAOS_ENVIRONMENT": "production",
            "MLCHAOS_ALLOW_PRODUCTION": "1",
            "MLCHAOS_HOME": "/tmp",
        }
    )
    check_environment(opted, SafetySpec(allow_production=True))
    dev = get_settings({"MLCHAOS_HOME": "/tmp"})
    with pytest.raises(SafetyError):
        check_environment(dev, SafetySpec(environment="prod"))
