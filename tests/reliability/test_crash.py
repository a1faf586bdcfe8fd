"""Crash torture (30 seeded trials; ``make torture N=200`` runs the long version): a child applies
an environment fault through session.apply_fault (local dir, S3 on moto, a PostgreSQL table,
partitioned layouts) and is SIGKILLed at a random point (mid-backup, mid-apply, holding the fault,
mid-restore, or while a second child restores); ``mlchaos restore`` or session.recover past the
TTL must leave every file, object and table identical to its pre-fault fingerprint."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.testing.torture import (
    TortureEnv,
    pg_snapshot,
    run_child,
    run_torture,
    sqlite_snapshot,
)

TRIALS = 30


def test_thirty_seeded_crash_trials_lose_nothing(
    tmp_path: Path, pg_server: Any, s3_endpoint: str, s3_client: Any
) -> None:
    env = TortureEnv(
        workdir=tmp_path, new_database=pg_server.create_database, s3_endpoint=s3_endpoint
    )
    lines: list[str] = []
    start = time.monotonic()
    summary = run_torture(
        TRIALS,
        seed=int(os.environ.get("MLCHAOS_TORTURE_SEED", "7")),
        env=env,
        jobs=3,
        cli_share=0.3,
        log=lines.append,
    )
    took = time.monotonic() - start
    print("\n".join(lines))
    print(f"kill points: {dict(summary.kill_points)}; {took:.1f} s")
    print(summary.last_line())
    failed = [r.line() for r in summary.results if not r.recovered]
    assert summary.lost == 0, failed
    assert summary.recovered == TRIALS, failed
    assert summary.last_line() == f"trials: {TRIALS}, lost: 0, recovered: {TRIALS}"
    assert sum(len(r.leftovers) for r in summary.results) == 0
    assert len(summary.kill_points) >= 3, summary.kill_points  # kills landed in varied phases
    kinds = {r.scenario.split("/")[0] for r in summary.results}
    assert kinds == {"local", "s3", "pg", "partition", "schema"}


CLAIM_AND_DIE = """
import sys
from mlchaos_orchestration.core.ledger import Ledger
assert Ledger().claim_restore(sys.argv[1])
"""


def test_restore_takes_over_at_once_from_a_restorer_that_died(
    tmp_path: Path, mlchaos_home: Path, monkeypatch: Any
) -> None:
    """A restorer killed mid-restore leaves the lease 'restoring' with a 30 s claim; the next
    restore must take over at once (its holder's pid is gone), not wait for the claim."""
    import subprocess
    import sys

    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.safety import SafetySpec
    from mlchaos_orchestration.core.session import apply_fault, recover, restore_lease
    from mlchaos_orchestration.faults.base import ApplyContext
    from mlchaos_orchestration.faults.catalog import get_fault_class
    from mlchaos_orchestration.testing.torture import local_snapshot

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("id\n1\n2\n")
    before = local_snapshot(data)
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", str(data))
    ledger = Ledger()
    fault = get_fault_class("upstream_outage").model_validate({"target": str(data)})
    for how in ("restore_lease", "recover"):
        lease = apply_fault(
            ledger, fault, ApplyContext(seed=1), run_id=how, safety=SafetySpec()
        ).lease
        subprocess.run([sys.executable, "-c", CLAIM_AND_DIE, lease.id], check=True, timeout=60)
        assert Ledger().get_lease(lease.id).state == "restoring"
        start = time.monotonic()
        if how == "recover":
            outcomes = recover(ledger)
            assert [o.lease_id for o in outcomes] == [lease.id] and outcomes[0].restored
        else:
            assert restore_lease(ledger, lease.id).restored
        took = time.monotonic() - start
        print(f"{how}: took over from a dead restorer in {took * 1000:.0f} ms")
        assert took < 5.0
        assert local_snapshot(data) == before


SCHEMA_FAULTS = [
    {"fault": "drop_column", "columns": ["amount", "label"]},
    {"fault": "rename_column", "mapping": {"amount": "amount_v2"}},
    {"fault": "type_flip", "columns": ["amount"], "fraction": 0.4},
]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_schema_faults_left_by_a_killed_process_are_restored_by_mlchaos_restore(
    tmp_path: Path, pg_server: Any, cli: Any, database: str
) -> None:
    """A child applies each SQL schema fault and is SIGKILLed holding it; ``mlchaos restore``
    brings back the original table: columns, types, order, indexes and rows."""
    import sqlite3

    if database == "sqlite":
        path = tmp_path / "features.db"
        url = f"sqlite:///{path}"
        conn = sqlite3.connect(path)
        conn.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, amount REAL NOT NULL, "
            "label VARCHAR(8), created DATE)"
        )
        conn.execute("CREATE INDEX events_label ON events (label)")
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            [(i, i / 7, "abc"[i % 3] if i % 4 else None, "2024-01-02") for i in range(300)],
        )
        conn.commit()
        conn.close()

        def snapshot() -> dict[str, Any]:
            return sqlite_snapshot(path)
    else:
        url = pg_server.create_database()
        import sqlalchemy as sa

        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE events (id integer PRIMARY KEY, amount double precision "
                    "NOT NULL, label varchar(8), created date)"
                )
            )
            conn.execute(sa.text("CREATE INDEX events_label ON events (label)"))
            conn.execute(
                sa.text(
                    "INSERT INTO events SELECT i, i / 7.0, CASE WHEN i % 4 > 0 THEN "
                    "substr('abc', 1 + i % 3, 1) END, DATE '2024-01-02' "
                    "FROM generate_series(0, 299) AS i"
                )
            )
        engine.dispose()

        def snapshot() -> dict[str, Any]:
            from mlchaos_orchestration.core.ledger import metadata

            return pg_snapshot(url, frozenset(metadata.tables))

    home = tmp_path / "home"
    env = {
        "MLCHAOS_HOME": str(home),
        "MLCHAOS_LEDGER_URL": f"sqlite:///{home / 'ledger.db'}",
        "MLCHAOS_ALLOWED_TARGETS": f"{url}#events",
        "MLCHAOS_ENVIRONMENT": "dev",
    }
    before = snapshot()
    assert list(before) == ["events"]
    for index, inner in enumerate(SCHEMA_FAULTS):
        job = {
            "fault": {
                "fault": "stored_data",
                "inner": inner,
                "target": {"url": url, "table": "events"},
            },
            "seed": 11,
            "role": "apply",
            "run_id": f"schema{index}",
        }
        seen, error = run_child(job, env, None)  # runs to "done", then SIGKILL while holding
        assert error is None and "applied" in seen, error
        held = snapshot()
        assert held != before and any(k.startswith("mlchaos_stash_") for k in held), inner
        done = cli("restore", env=env)
        assert done.returncode == 0, done.stderr
        assert snapshot() == before, inner
