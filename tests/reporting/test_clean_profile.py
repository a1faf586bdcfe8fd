"""A fault on stored data records a profile of the data before the fault, and the report's
suggestion for the surviving mutant takes its bounds from it: the user's own Airflow / Dagster
gates record no control profile."""

from __future__ import annotations

from pathlib import Path

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.faults import get_fault_class
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.environment.stored import StoredDataFault
from mlchaos_orchestration.reporting.report import build_journal


def test_stored_fault_profiles_clean_data_for_the_suggestion(tmp_path: Path) -> None:
    csv = tmp_path / "features.csv"
    csv.write_text("id,amount\n" + "\n".join(f"{i},{2 * i + 1}" for i in range(30)) + "\n")
    spec = {"fault": "out_of_range", "columns": ["amount"], "fraction": 0.5}
    inner = get_fault_class("out_of_range")(columns=["amount"], fraction=0.5)
    details = StoredDataFault(inner=inner, target=str(csv)).apply(ApplyContext(seed=3))
    profile = details["clean_profile"]
    assert profile["row_count"] == 30
    assert profile["stats"]["amount"]["min"] == 1 and profile["stats"]["amount"]["max"] == 59
    assert details["rows_changed"] == 15  # and the file really changed
    assert max(float(line.split(",")[1]) for line in csv.read_text().splitlines()[1:]) > 59

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    run = ledger.start_run(
        "oor",
        pipeline="user_dag",
        orchestrator="airflow",
        suite_id="s",
        meta={"experiment": {"faults": [spec], "gate": "check"}},
    )
    ledger.record(run, "fault_applied", fault="out_of_range", details=details)
    ledger.set_verdict(run, {"verdict": "silent", "evidence": {"gate": {"ran_checks": True}}})
    journal = build_journal(ledger, "s")
    (survivor,) = journal["mutation"]["survivors"]
    assert survivor["expectation"] == (
        'ExpectColumnValuesToBeBetween(column="amount", min_value=1.0, max_value=59.0)'
    )
    record = journal["runs"][0]
    assert record["clean_profile"] == profile
    assert "clean_profile" not in record["events"][0]["data"]["details"]  # not twice


def test_each_target_gets_its_own_survivor_and_bounds(tmp_path: Path) -> None:
    """Two targets of one orchestrator: the control profile of each pipeline bounds its own
    survivor (not the first pipeline's)."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    spec = {"fault": "out_of_range", "columns": ["amount"], "fraction": 0.5}
    for pipeline, top in (("orders", 10.0), ("refunds", 500.0)):
        control = ledger.start_run("control", pipeline=pipeline, control=True, suite_id="s")
        stats = {"amount": {"min": 1.0, "max": top, "mean": 2.0, "std": 1.0}}
        ledger.record(control, "data_profile", profile={"columns": ["amount"], "stats": stats})
        ledger.set_verdict(control, {"verdict": "clean"})
        run = ledger.start_run(
            "oor", pipeline=pipeline, suite_id="s", meta={"experiment": {"faults": [spec]}}
        )
        ledger.set_verdict(run, {"verdict": "silent", "evidence": {"gate": {"ran_checks": True}}})
    survivors = build_journal(ledger, "s")["mutation"]["survivors"]
    assert [(s["pipeline"], s["expectation"]) for s in survivors] == [
        ("orders", 'ExpectColumnValuesToBeBetween(column="amount", min_value=1.0, max_value=10.0)'),
        (
            "refunds",
            'ExpectColumnValuesToBeBetween(column="amount", min_value=1.0, max_value=500.0)',
        ),
    ]
