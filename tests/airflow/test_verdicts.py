"""The weekly DAG's verdict document, read from a real (SQLite) ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlchaos_orchestration.airflow.verdicts import (
    BadVerdict,
    checked_verdict,
    collect_verdicts,
    matrix,
    write_verdicts,
)
from mlchaos_orchestration.core import control
from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger

EXAMPLES = Path(__file__).resolve().parents[2] / "mlchaos_orchestration" / "examples"


def _finished(
    ledger: Ledger, name: str, run_key: str, events: list[str], control_run: bool = False
) -> None:
    exp = parse_experiment(
        {"name": name, "control": True}
        if control_run
        else {"name": name, "faults": [{"fault": "nulls", "columns": ["a"]}]}
    )
    run_id = control.begin_run(
        exp, run_key=run_key, orchestrator="airflow", pipeline="p", ledger=ledger
    )
    for kind in events:
        ledger.record(run_id, kind, source="t")
    control.finish(run_id, ledger=ledger)


def test_collect_and_write_verdicts(mlchaos_home: Path) -> None:
    ledger = Ledger()
    _finished(ledger, "control", "w__control", ["gate_passed", "consumer_started"], True)
    _finished(ledger, "nulls", "w__nulls", ["fault_applied", "gate_failed", "alert_sent"])
    _finished(ledger, "dupes", "w__dupes", ["fault_applied", "consumer_started"])
    doc = collect_verdicts(
        [
            ("control", "w__control"),
            ("nulls", "w__nulls"),
            ("dupes", "w__dupes"),
            ("missing", "w__missing"),
        ],
        expected={"control": "clean", "nulls": "caught", "dupes": "caught"},
    )
    assert [r["verdict"] for r in doc["runs"]] == ["clean", "caught", "silent", None]
    assert doc["summary"] == {"runs": 4, "as_expected": 2, "caught": 1, "silent": 1}
    path = write_verdicts(mlchaos_home / "reports" / "w.json", doc)
    assert json.loads(path.read_text())["runs"][2]["experiment"] == "dupes"
    assert checked_verdict("w__nulls", "nulls")["verdict"] == "caught"
    with pytest.raises(BadVerdict, match="silent"):
        checked_verdict("w__dupes", "dupes")


def test_matrix_reads_names_and_expectations() -> None:
    names = dict(matrix(EXAMPLES / "experiments.yaml"))
    assert names["control"] == "clean" and names["outage-missing"] == "silent"
    assert len(names) >= 6
