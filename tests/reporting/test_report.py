"""Report files agree with the journal; hostile values are escaped."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree as ET

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.reporting.report import build_journal, write_report

HOSTILE = "<script>alert(1)</script>"


def _suite(ledger: Ledger, suite_id: str) -> None:
    specs = [
        ("control", True, [], ["run_started", "gate_passed", "consumer_started"], "clean"),
        (
            "nulls",
            False,
            [{"fault": "nulls", "columns": ["amount"], "fraction": 0.2}],
            ["fault_applied", "gate_failed", "alert_sent"],
            "caught",
        ),
        (
            "dups",
            False,
            [{"fault": "duplicate_rows", "fraction": 0.1}],
            ["fault_applied", "gate_passed", "consumer_started"],
            "silent",
        ),
        (
            f"unseen-{HOSTILE}"[:60].replace("<", "x").replace(">", "y"),
            False,
            [{"fault": "unseen_category", "columns": ["country"], "value": HOSTILE}],
            ["fault_applied", "gate_failed"],
            "unalerted",
        ),
    ]
    for i, (name, control, faults, kinds, verdict) in enumerate(specs):
        run = ledger.start_run(
            name,
            pipeline="feature_pipeline",
            orchestrator="airflow",
            control=control,
            suite_id=suite_id,
            meta={
                "experiment": {
                    "faults": faults,
                    "gate": "validate",
                    "expect": verdict,
                    "hypothesis": HOSTILE,
                }
            },
        )
        for j, kind in enumerate(kinds):
            ledger.record(
                run, kind, ts=1000 + 10 * i + j, source=HOSTILE if j else "", delivered=True
            )
        if control:
            ledger.record(run, "data_profile", profile={"key": "event_id", "columns": ["a"]})
        ledger.set_verdict(
            run,
            {
                "verdict": verdict,
                "reason": f"because {HOSTILE}",
                "detection_latency_s": 1.0 if verdict != "clean" else None,
                "halted_by_gate": verdict in ("caught", "unalerted"),
            },
        )
        ledger.end_run(run)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.scripts += tag == "script"
        assert not any(k in ("src", "href") and v and "://" in v for k, v in attrs), attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_files_agree_and_escape(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    _suite(ledger, "s1")
    out = write_report(build_journal(ledger, "s1"), tmp_path / "reports")
    journal = json.loads((out / "journal.json").read_text())
    assert (tmp_path / "reports" / "latest").resolve() == out.resolve()

    verdicts = {r["experiment"]: r["verdict"] for r in journal["runs"]}
    assert sorted(verdicts.values()) == ["caught", "clean", "silent", "unalerted"]
    assert journal["resilience_score"] == round(100 * 1.5 / 3, 1)
    assert journal["mutation"]["killed"] == 2 and journal["mutation"]["mutants"] == 3
    survivor = journal["mutation"]["survivors"][0]
    assert survivor["fault"] == "duplicate_rows" and survivor["expectation"]

    suite = ET.parse(out / "junit.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == set(verdicts)
    for name, verdict in verdicts.items():
        failed = cases[name].find("failure") is not None
        assert failed == (verdict in ("silent", "unalerted")), name
    assert suite.get("failures") == "2"

    html = (out / "report.html").read_text()
    parser = _Text()
    parser.feed(html)
    assert parser.scripts == 0  # the hostile value never became a tag
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    text = " ".join(parser.text)
    for name in verdicts:
        assert name in text
    assert "ExpectCompoundColumnsToBeUnique" in html or "Unique" in html
    assert f"{journal['mutation']['killed']}/{journal['mutation']['mutants']}" in text


def test_trend_uses_earlier_suites(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    _suite(ledger, "s1")
    _suite(ledger, "s2")
    journal = build_journal(ledger, "s2")
    assert [h["suite_id"] for h in journal["history"]] == ["s1"]
    assert "polyline" in (write_report(journal, tmp_path / "r") / "report.html").read_text()


# ------------------------------------------------------------------ evidence, junit statuses
def _judged(ledger: Ledger, name: str, events: list, **kw: object) -> str:
    from mlchaos_orchestration.core.verdict import compute_verdict

    control = bool(kw.pop("control", False))
    run = ledger.start_run(
        name,
        pipeline="p",
        orchestrator="airflow",
        control=control,
        suite_id="ev",
        meta={"experiment": {"faults": [{"fault": "nulls", "columns": ["amount"]}]}},
    )
    for i, (kind, source, data) in enumerate(events):
        ledger.record(run, kind, ts=2000 + i, source=source, **data)
    ledger.set_verdict(run, compute_verdict(ledger.events(run), control=control, **kw))
    ledger.end_run(run)
    return run


STORED = {"fault": "nulls", "lease_id": "L1", "targets": [f"/d/{HOSTILE}.csv"], "rows_changed": 7}


def _evidence_suite(ledger: Ledger) -> None:
    read = {"role": "gate", "task": "validate", "lease_id": "L1", "target": f"/d/{HOSTILE}.csv"}
    _judged(
        ledger,
        "crashed",
        [
            ("fault_applied", "", STORED),
            ("target_read", "validate", {**read, "matches": True}),
            (
                "gate_crashed",
                "validate",
                {"error_type": "SpecError", "message": f"unknown expectation {HOSTILE}"},
            ),
        ],
    )
    _judged(
        ledger,
        "rewritten",
        [
            ("fault_applied", "", STORED),
            ("target_read", "validate", {**read, "matches": False}),
            ("gate_passed", "validate", {}),
            ("consumer_started", "train", {}),
        ],
    )
    _judged(
        ledger,
        "retried-then-caught-by-task",
        [
            ("fault_applied", "", STORED),
            ("target_read", "validate", {**read, "matches": True}),
            ("task_retry", "ingest", {"attempt": 1, "message": "reset"}),
            ("task_failed", "ingest", {"attempt": 2, "final": True, "message": "boom"}),
            ("alert_sent", "", {"channel": "SmtpNotifier", "delivered": True, "status": "250"}),
        ],
    )
    _judged(
        ledger,
        "no-channel",
        [
            ("fault_applied", "", STORED),
            ("target_read", "validate", {**read, "matches": True}),
            ("gate_failed", "validate", {"checks_run": True, "message": "2 failed"}),
            ("alert_failed", "", {"channel": "mlchaos_webhook", "delivered": False, "status": 500}),
        ],
        alert_expected=False,
    )


def test_evidence_in_journal_junit_and_html(tmp_path: Path) -> None:
    from mlchaos_orchestration.suite.run import record_missing_verdicts

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    _evidence_suite(ledger)

    class Exp:  # what record_missing_verdicts needs of an experiment
        name, control, seed = "never-ran", False, 0

        def spec(self) -> dict:
            return {"faults": []}

    record_missing_verdicts(ledger, "ev", [Exp()], {"dagster": -9})
    out = write_report(build_journal(ledger, "ev"), tmp_path / "reports")
    journal = json.loads((out / "journal.json").read_text())
    runs = {r["experiment"]: r for r in journal["runs"]}
    assert {k: r["verdict"] for k, r in runs.items()} == {
        "crashed": "gate_crashed",
        "rewritten": "not_reached",
        "retried-then-caught-by-task": "caught",
        "no-channel": "unalerted",
        "never-ran": "error",
    }
    task_caught = runs["retried-then-caught-by-task"]
    assert task_caught["retries"] == 1 and task_caught["evidence"]["halt"]["task"] == "ingest"
    assert "retry: ingest attempt 1 failed: reset" in task_caught["evidence_text"]
    assert "alert via SmtpNotifier: delivered (250)" in task_caught["evidence_text"]
    assert any("CRASHED" in line for line in runs["crashed"]["evidence_text"])
    assert any("rewritten content" in line for line in runs["rewritten"]["evidence_text"])
    assert any("7 rows changed" in line for line in runs["rewritten"]["evidence_text"])
    assert runs["never-ran"]["reason"] == "no verdict: worker dagster exited -9"
    # a crash and a halt by another task are no gate kills
    assert journal["mutation"]["mutants"] == 3 and journal["mutation"]["killed"] == 1

    suite = ET.parse(out / "junit.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    crash = cases["crashed"].find("failure")
    assert crash is not None and crash.get("type") == "gate_crashed"
    assert "unknown expectation" in crash.get("message", "")
    skipped = cases["rewritten"].find("skipped")
    assert skipped is not None and "rewritten" in skipped.get("message", "")
    assert cases["never-ran"].find("error") is not None
    assert "worker dagster exited -9" in cases["never-ran"].find("error").get("message", "")
    no_channel = cases["no-channel"]
    assert no_channel.find("failure") is None and no_channel.find("error") is None
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "1", "1")

    html = (out / "report.html").read_text()
    parser = _Text()
    parser.feed(html)
    assert parser.scripts == 0 and HOSTILE not in html
    text = " ".join(parser.text)
    assert "CRASHED without running its checks: SpecError" in text
    assert "found rewritten content" in text and "no verdict: worker dagster exited -9" in text
    assert "no alert channel declared" in text


def test_evidence_names_failed_checks_given_as_dicts_or_text() -> None:
    from mlchaos_orchestration.reporting.report import evidence_lines

    gate = {
        "task": "check_orders",
        "ran_checks": True,
        "failed": [{"expectation": "ExpectColumnValuesToNotBeNull", "column": "id"}, "rows < 10"],
    }
    lines = evidence_lines({"gate": gate})
    assert any(
        "check_orders ran its checks and found violations: "
        "ExpectColumnValuesToNotBeNull(id), rows < 10" in line
        for line in lines
    ), lines
