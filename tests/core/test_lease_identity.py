"""Lease identity is the RESOLVED target: two deployments sharing one ledger whose
``${MLCHAOS_FEATURES_URL}`` point at different databases do not block each other; one database
spelled two ways (driver, credentials, default port, loopback name, default schema, case) is one
lease identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import LeaseConflictError

FEATURES = {"url": "${MLCHAOS_FEATURES_URL}", "table": "features"}


def _take(ledger: Ledger, run_id: str, target: dict[str, str]) -> str:
    lease = ledger.acquire_lease(
        run_id=run_id, fault="drop_column", targets=[Target.parse(target)], spec={}, ttl_s=60
    )
    return lease.id


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / 'shared-ledger.db'}")


def test_different_resolved_databases_do_not_conflict(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCHAOS_FEATURES_URL", "postgresql://ci@db-a.internal:5432/features")
    _take(ledger, "deployment-a", FEATURES)
    (held,) = ledger.live_leases()
    assert held.targets[0].identity == (
        "postgresql",
        "db-a.internal",
        "5432",
        "features",
        "features",
    )
    assert "${MLCHAOS_FEATURES_URL}" in held.targets[0].location  # the reference, no secret
    monkeypatch.setenv("MLCHAOS_FEATURES_URL", "postgresql://ci@db-b.internal:5432/features")
    _take(ledger, "deployment-b", FEATURES)  # another database: no conflict
    assert len(ledger.live_leases()) == 2


@pytest.mark.parametrize(
    "spelling",
    [
        "postgresql+psycopg://other:${PGPASS}@127.0.0.1/features",  # driver, user, port, host
        "postgresql+asyncpg://ci@localhost:5432/features",
    ],
)
def test_same_database_written_differently_conflicts(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    monkeypatch.setenv("PGPASS", "secret")
    monkeypatch.setenv("MLCHAOS_FEATURES_URL", "postgresql://ci@localhost:5432/features")
    _take(ledger, "deployment-a", FEATURES)
    monkeypatch.setenv("MLCHAOS_FEATURES_URL", spelling)
    with pytest.raises(LeaseConflictError, match="features"):
        _take(
            ledger, "deployment-b", {"url": "${MLCHAOS_FEATURES_URL}", "table": "public.Features"}
        )
    assert "secret" not in str(ledger.live_leases()[0].targets[0].model_dump())


def test_engine_wide_lease_still_covers_every_table(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCHAOS_FEATURES_URL", "postgresql://ci@localhost/features")
    _take(ledger, "connector", {"url": "${MLCHAOS_FEATURES_URL}", "table": "*"})
    with pytest.raises(LeaseConflictError):
        _take(ledger, "drop", {"url": "postgresql://ci@127.0.0.1:5432/features", "table": "x"})
    _take(ledger, "other-db", {"url": "postgresql://ci@127.0.0.1:5432/labels", "table": "x"})


def test_sqlite_relative_and_absolute_paths_are_one_database(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _take(ledger, "a", {"url": "sqlite:///features.db", "table": "features"})
    with pytest.raises(LeaseConflictError):
        _take(ledger, "b", {"url": f"sqlite:///{tmp_path / 'features.db'}", "table": "FEATURES"})
