"""The ledger on SQLite and a real PostgreSQL server: schema, events, leases."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos_orchestration.core.ledger import MIGRATIONS, Ledger
from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import LeaseConflictError


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    if request.param == "sqlite":
        return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    return Ledger(request.getfixturevalue("pg_url"))


def test_migrations_are_versioned_and_idempotent(ledger: Ledger) -> None:
    assert ledger.schema_version() == max(v for v, _ in MIGRATIONS)
    assert ledger.migrate() == ledger.schema_version()  # re-running changes nothing
    Ledger(ledger.url)  # a second process start migrates nothing and does not fail


def test_events_are_ordered_and_typed(ledger: Ledger) -> None:
    run = ledger.start_run("exp", pipeline="p", seed=3)
    ledger.record(run, "fault_applied", ts=2.0, fault="nulls")
    ledger.record(run, "run_started", ts=1.0)
    kinds = [e.kind for e in ledger.events(run)]
    assert kinds == ["run_started", "fault_applied"]
    assert ledger.events(run)[1].data == {"fault": "nulls"}
    ledger.set_verdict(run, {"verdict": "caught"})
    assert ledger.get_run(run)["verdict"] == "caught"


def test_overlapping_leases_conflict(ledger: Ledger, tmp_path: Path) -> None:
    run = ledger.start_run("exp")
    a = Target.parse(str(tmp_path / "data"))
    inside = Target.parse(str(tmp_path / "data" / "part.csv"))
    other = Target.parse(str(tmp_path / "other"))
    lease = ledger.acquire_lease(run_id=run, fault="f", targets=[a], spec={}, ttl_s=60)
    with pytest.raises(LeaseConflictError, match="held by fault"):
        ledger.acquire_lease(run_id=run, fault="g", targets=[inside], spec={}, ttl_s=60)
    ledger.acquire_lease(run_id=run, fault="g", targets=[other], spec={}, ttl_s=60)
    assert ledger.claim_restore(lease.id)
    assert not ledger.claim_restore(lease.id)  # one restorer at a time
    ledger.set_lease_state(lease.id, "restored", expect=("restoring",))
    ledger.acquire_lease(run_id=run, fault="g", targets=[inside], spec={}, ttl_s=60)


def test_sql_targets_overlap_per_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", "postgresql://u:secret@h/db")
    url = "${DB_URL}"
    t = Target.parse({"url": url, "table": "f", "where": {"ds": "2026-01-02"}})
    u = Target.parse({"url": url, "table": "f", "where": {"ds": "2026-01-03"}})
    whole = Target.parse({"url": url, "table": "f"})
    assert not t.overlaps(u) and t.overlaps(whole)
    assert "secret" not in t.lock_key() and "secret" not in t.describe()


def test_hooks_of_active_unexpired_leases_only(ledger: Ledger) -> None:
    run = ledger.start_run("exp")
    t = Target.parse({"url": "sqlite:///x.db", "table": "t"})
    lease = ledger.acquire_lease(
        run_id=run,
        fault="connector_failure",
        targets=[t],
        spec={},
        ttl_s=60,
        hook={"kind": "sql_failure"},
    )
    assert ledger.active_hooks() == []  # not active until its backups are done
    ledger.set_lease_state(lease.id, "active")
    assert ledger.active_hooks() == [(lease.id, {"kind": "sql_failure"})]
    assert ledger.active_hooks(now=lease.expires_at + 1) == []


def test_many_processes_migrating_a_fresh_postgres_ledger_at_once(pg_url: str) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from mlchaos_orchestration.core.ledger import Ledger;"
        "print(Ledger(sys.argv[1]).schema_version())"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, pg_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [o[1][-300:] for o in outs]
    assert {o[0].strip() for o in outs} == {str(max(v for v, _ in MIGRATIONS))}


def test_many_processes_migrating_a_fresh_sqlite_ledger_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'race.db'}"
    code = (
        "import sys; from mlchaos_orchestration.core.ledger import Ledger;"
        "print(Ledger(sys.argv[1]).schema_version())"
    )
    for _ in range(3):
        (tmp_path / "race.db").unlink(missing_ok=True)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0] * 8, [o[1][-300:] for o in outs]
