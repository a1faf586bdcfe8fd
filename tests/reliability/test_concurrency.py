"""Concurrency across processes: one target, one lease (SQLite and PostgreSQL ledgers); eight
experiments at once on a fresh PostgreSQL ledger all record complete event streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from mlchaos_orchestration.core.ledger import Ledger, backups
from mlchaos_orchestration.core.session import restore_all
from mlchaos_orchestration.testing.torture import local_snapshot

CSV = "".join(f"{i},{i * 1.5}\n" for i in range(200))
CONTENDERS = 6
WORKER = """
import json, sys, time
from mlchaos_orchestration.settings import get_settings
from mlchaos_orchestration.errors import LeaseConflictError
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.catalog import get_fault_class
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec
from mlchaos_orchestration.core.session import apply_fault

job = json.loads(sys.argv[1])
settings = get_settings()
ledger = Ledger(settings.ledger_url)
fault = get_fault_class("upstream_outage").model_validate(
    {"target": job["target"], "mode": "truncated", "keep_fraction": 0.5})
while time.time() < job["start"]:
    time.sleep(0.001)
try:
    applied = apply_fault(ledger, fault, ApplyContext(seed=1), run_id=job["run_id"],
                          safety=SafetySpec(), settings=settings)
    print("ok", applied.lease.id, flush=True)
except LeaseConflictError as exc:
    print("conflict", str(exc), flush=True)
"""


def _env(home: Path, ledger_url: str, allowed: str) -> dict[str, str]:
    return {
        **os.environ,
        "MLCHAOS_HOME": str(home),
        "MLCHAOS_LEDGER_URL": ledger_url,
        "MLCHAOS_ALLOWED_TARGETS": allowed,
        "MLCHAOS_ENVIRONMENT": "dev",
    }


def _tree(root: Path, files: int = 20) -> Path:
    for i in range(files):
        (root / f"p{i % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"p{i % 3}" / f"part-{i}.csv").write_text("id,amount\n" + CSV)
    return root


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_same_target_from_many_processes_one_lease_one_backup(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    ledger_url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{home / 'ledger.db'}"
    )
    data = _tree(tmp_path / "data" / "events")
    before = local_snapshot(tmp_path / "data")
    env = _env(home, ledger_url, str(tmp_path / "data"))
    Ledger(ledger_url)  # schema in place, so the race is on the lease, not the migration
    for round_no in range(2):
        start = time.time() + 4.0
        targets = [str(data) if i % 2 == 0 else str(data / "p1") for i in range(CONTENDERS)]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER,
                    json.dumps({"target": t, "start": start, "run_id": f"r{round_no}-{i}"}),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i, t in enumerate(targets)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        lines = [out.strip() for out, _ in outputs]
        assert all(line.startswith(("ok", "conflict")) for line in lines), outputs
        winners = [line for line in lines if line.startswith("ok")]
        assert len(winners) == 1, lines
        assert sum("is held by fault" in line for line in lines) == CONTENDERS - 1
        ledger = Ledger(ledger_url)
        live = ledger.live_leases()
        assert [lease.id for lease in live] == [winners[0].split()[1]]
        with ledger.engine.connect() as conn:
            n_backups = conn.execute(
                sa.select(sa.func.count())
                .select_from(backups)
                .where(backups.c.lease_id == live[0].id)
            ).scalar()
            all_backups = conn.execute(sa.select(sa.func.count()).select_from(backups)).scalar()
        assert n_backups == 1 and all_backups == round_no + 1, "a loser took a backup"
        assert local_snapshot(tmp_path / "data") != before  # the winner's fault is in effect
        settings = _settings(env)
        assert all(o.restored for o in restore_all(ledger, settings=settings))
        assert local_snapshot(tmp_path / "data") == before
        assert ledger.live_leases() == []


def _settings(env: dict[str, str]) -> Any:
    from mlchaos_orchestration.settings import get_settings

    return get_settings(env)


def test_eight_concurrent_experiments_on_postgres_ledger_record_complete_streams(
    pg_url: str, tmp_path: Path, tiny_pipeline: dict[str, str]
) -> None:
    """Eight ``mlchaos run`` processes at once, one fresh PostgreSQL ledger (they also race to
    create its schema), each with an outage on its own directory."""
    home = tmp_path / "home"
    roots = [_tree(tmp_path / "data" / f"src{i}", files=5) for i in range(8)]
    before = local_snapshot(tmp_path / "data")
    env = {**_env(home, pg_url, str(tmp_path / "data")), **tiny_pipeline}
    procs = []
    for i, root in enumerate(roots):
        spec = tmp_path / f"exp{i}.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "experiments": [
                        {
                            "name": f"exp{i}",
                            "seed": i,
                            "gate": "gate",
                            "consumer": "train",
                            "faults": [
                                {
                                    "fault": "upstream_outage",
                                    "target": str(root),
                                    "mode": ["missing", "empty", "truncated"][i % 3],
                                }
                            ],
                        }
                    ]
                }
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlchaos_orchestration.cli",
                    "run",
                    str(spec),
                    "--pipeline",
                    "tinypipe:pipeline",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    assert all(code == 0 for _, code in results), results
    ledger = Ledger(pg_url)
    runs = ledger.list_runs()
    assert sorted(r["experiment"] for r in runs) == [f"exp{i}" for i in range(8)]
    for run in runs:
        kinds = [e.kind for e in ledger.events(run["id"])]
        expected = [
            "run_started",
            "fault_applied",
            "target_read",  # the gate starts on the faulted data
            "gate_passed",
            "target_read",  # the consumer starts on it
            "consumer_started",
            "restored",
        ]
        assert kinds == expected, (run["experiment"], kinds)
        assert run["status"] == "finished" and run["verdict"] == "silent"
    assert ledger.live_leases() == []
    assert local_snapshot(tmp_path / "data") == before
    print(json.dumps({"runs": len(runs)}))
