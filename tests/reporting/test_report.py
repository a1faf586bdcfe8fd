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
