"""LedgerHooks writes what its hooks saw to the ledger (``interceptor_stats``) when they are
removed: the verdict's evidence that a connector fault reached the pipeline. Real SQLite engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlchaos_orchestration import interceptors
from mlchaos_orchestration.core import control
from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.interceptors.ledger_sync import LedgerHooks


@pytest.fixture(autouse=True)
def _no_leftover_hooks() -> Iterator[None]:
    yield
    interceptors.remove_all()


def _connector_run(ledger: Ledger, db: Path, rate: float = 0.5) -> tuple[str, str]:
    url = f"sqlite:///{db}"
    exp = parse_experiment(
        {
            "name": "flaky-db",
            "faults": [{"fault": "connector_failure", "url": url, "rate": rate, "on": ["execute"]}],
            "safety": {"allowed_targets": [f"{url}#*"]},
        }
    )
    run_id = control.begin_run(exp, run_key="r", orchestrator="plain", pipeline="p", ledger=ledger)
    applied = control.inject(run_id, exp, exp.faults[0], seed=11, ledger=ledger)
    assert not isinstance(applied, list)
    return run_id, applied.lease.id


def _statements(db: Path, n: int) -> int:
    engine = sa.create_engine(f"sqlite:///{db}")
    failed = 0
    with engine.connect() as conn:
        for _ in range(n):
            try:
                conn.execute(sa.text("select 1"))
            except sa.exc.OperationalError:
                failed += 1
    engine.dispose()
    return failed


def _stats(ledger: Ledger, run_id: str) -> list[dict]:
    return [e.data for e in ledger.events(run_id) if e.kind == "interceptor_stats"]


def test_close_flushes_intercepted_and_failed_counts(mlchaos_home: Path, tmp_path: Path) -> None:
    ledger = Ledger()
    run_id, lease_id = _connector_run(ledger, tmp_path / "features.db")
    with LedgerHooks(ledger, run_id=run_id):
        failed = _statements(tmp_path / "features.db", 40)
        _statements(tmp_path / "other.db", 5)  # another database: not intercepted
    assert 0 < failed < 40
    [stats] = _stats(ledger, run_id)
    assert stats["lease_id"] == lease_id
    assert (stats["intercepted"], stats["failed"]) == (40, failed)
    verdict = control.finish(run_id, ledger=ledger)
    assert verdict["evidence"]["calls"] == {"intercepted": 40, "failed": failed}


def test_hook_removed_when_its_lease_ends_flushes_once(mlchaos_home: Path, tmp_path: Path) -> None:
    ledger = Ledger()
    run_id, lease_id = _connector_run(ledger, tmp_path / "features.db", rate=1.0)
    hooks = LedgerHooks(ledger, run_id=run_id).start()
    other = LedgerHooks(ledger, run_id=run_id).start()  # same process, same hook handle
    try:
        assert _statements(tmp_path / "features.db", 7) == 7
        control.finish(run_id, ledger=ledger)  # lease restored elsewhere
        hooks.refresh()
        other.refresh()
        assert _statements(tmp_path / "features.db", 3) == 0  # the hook is gone
    finally:
        hooks.close()
        other.close()
    counts = [(s["intercepted"], s["failed"]) for s in _stats(ledger, run_id)]
    assert sum(c[0] for c in counts) == 7 and sum(c[1] for c in counts) == 7  # never doubled


def test_zero_calls_is_not_reached(mlchaos_home: Path, tmp_path: Path) -> None:
    ledger = Ledger()
    run_id, _ = _connector_run(ledger, tmp_path / "features.db")
    with LedgerHooks(ledger, run_id=run_id):
        ledger.record(run_id, "gate_passed", source="validate")
        ledger.record(run_id, "consumer_started", source="train")
    assert [(s["intercepted"], s["failed"]) for s in _stats(ledger, run_id)] == [(0, 0)]
    verdict = control.finish(run_id, ledger=ledger)
    assert verdict["verdict"] == "not_reached"
    assert "intercepted 0 calls" in verdict["reason"]


def test_refresh_after_close_installs_nothing(mlchaos_home: Path, tmp_path: Path) -> None:
    """A watcher thread that was reading the ledger while ``close()`` ran must not put the
    hook back afterwards (it would outlive its task and fail the next one's statements)."""
    ledger = Ledger()
    run_id, _ = _connector_run(ledger, tmp_path / "features.db", rate=1.0)
    hooks = LedgerHooks(ledger, run_id=run_id)
    hooks.refresh()
    assert _statements(tmp_path / "features.db", 3) == 3
    hooks.close()
    hooks.refresh()  # the late refresh of a thread close() could not join in time
    assert interceptors.active() == []
    assert _statements(tmp_path / "features.db", 3) == 0
