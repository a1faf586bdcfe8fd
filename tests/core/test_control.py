"""control.observe_read: what the gate / consumer is about to read is (still) the faulted content,
on a real ledger (SQLite, and PostgreSQL for the cross-process store) and a real local file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlchaos_orchestration.core import control
from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger

CLEAN = "id,amount\n" + "".join(f"{i},{i * 1.5}\n" for i in range(200))


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, mlchaos_home: Path) -> Ledger:
    if request.param == "sqlite":
        return Ledger(f"sqlite:///{mlchaos_home / 'ledger.db'}")
    return Ledger(request.getfixturevalue("pg_url"))


def _faulted_run(ledger: Ledger, data: Path) -> tuple[str, str]:
    exp = parse_experiment(
        {
            "name": "nulls-orders",
            "faults": [{"fault": "nulls", "columns": ["amount"], "fraction": 0.2}],
            "gate": "validate",
            "consumer": "train",
            "safety": {"allowed_targets": [str(data.parent)]},
        }
    )
    run_id = control.begin_run(exp, run_key="k1", orchestrator="plain", pipeline="p", ledger=ledger)
    applied = control.inject(run_id, exp, exp.faults[0], seed=3, target=str(data), ledger=ledger)
    assert not isinstance(applied, list)
    return run_id, applied.lease.id


def test_fault_applied_records_fingerprint_and_rows_changed(ledger: Ledger, tmp_path: Path) -> None:
    from mlchaos_orchestration.stores.local import fingerprint

    data = tmp_path / "orders.csv"
    data.write_text(CLEAN)
    run_id, _ = _faulted_run(ledger, data)
    [applied] = [e for e in ledger.events(run_id) if e.kind == "fault_applied"]
    canonical = json.dumps(fingerprint(data), sort_keys=True, separators=(",", ":"))
    assert applied.data["fingerprint"] == {
        str(data): hashlib.sha256(canonical.encode()).hexdigest()
    }
    assert applied.data["rows_changed"] == 40  # 20% of 200 rows
    assert applied.data["hook"] is False
    control.finish(run_id, ledger=ledger)


def test_unchanged_target_matches_and_a_rewrite_does_not(ledger: Ledger, tmp_path: Path) -> None:
    data = tmp_path / "orders.csv"
    data.write_text(CLEAN)
    run_id, lease_id = _faulted_run(ledger, data)

    [gate] = control.observe_read(run_id, "validate", "gate", ledger)
    assert gate["matches"] is True and gate["checked_by"] == "signature"  # stat only, no read
    assert gate["lease_id"] == lease_id and gate["target"] == str(data)

    data.write_text(CLEAN)  # the producer rewrites its output after the fault
    [consumer] = control.observe_read(run_id, "train", "consumer", ledger)
    assert consumer["matches"] is False and consumer["checked_by"] == "checksum"

    reads = [e for e in ledger.events(run_id) if e.kind == "target_read"]
    assert [(e.data["role"], e.data["matches"]) for e in reads] == [
        ("gate", True),
        ("consumer", False),
    ]
    ledger.record(run_id, "gate_passed", source="validate")
    ledger.record(run_id, "consumer_started", source="train")
    verdict = control.finish(run_id, ledger=ledger)
    assert verdict["verdict"] == "silent"  # the gate read the faulted content and passed it
    assert "gate validate read the faulted" in verdict["reason"]


def test_every_read_rewritten_is_not_reached(ledger: Ledger, tmp_path: Path) -> None:
    data = tmp_path / "orders.csv"
    data.write_text(CLEAN)
    run_id, _ = _faulted_run(ledger, data)
    data.write_text(CLEAN)  # rewritten before the gate started
    [gate] = control.observe_read(run_id, "validate", "gate", ledger)
    assert gate["matches"] is False
    ledger.record(run_id, "gate_passed", source="validate")
    ledger.record(run_id, "consumer_started", source="train")
    verdict = control.finish(run_id, ledger=ledger)
    assert verdict["verdict"] == "not_reached"
    assert "rewritten" in verdict["reason"] and str(data) in verdict["reason"]


def test_rewrite_with_the_faulted_bytes_still_matches(mlchaos_home: Path, tmp_path: Path) -> None:
    ledger = Ledger()
    data = tmp_path / "orders.csv"
    data.write_text(CLEAN)
    run_id, _ = _faulted_run(ledger, data)
    data.write_bytes(data.read_bytes())  # new inode/mtime, same content: hashed, still faulted
    [read] = control.observe_read(run_id, "validate", "gate", ledger)
    assert read["matches"] is True and read["checked_by"] == "checksum"
    control.finish(run_id, ledger=ledger)


def test_no_live_lease_no_read_and_bad_role(mlchaos_home: Path, tmp_path: Path) -> None:
    ledger = Ledger()
    data = tmp_path / "orders.csv"
    data.write_text(CLEAN)
    run_id, _ = _faulted_run(ledger, data)
    control.finish(run_id, ledger=ledger)  # restored: nothing faulted is left to read
    assert control.observe_read(run_id, "validate", "gate", ledger) == []
    assert data.read_text() == CLEAN
    with pytest.raises(ValueError, match="role"):
        control.observe_read(run_id, "validate", "reader", ledger)
