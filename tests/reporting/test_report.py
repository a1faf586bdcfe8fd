"""Report files agree with the journal; hostile values are escaped."""

from __future__ import annotations

import json
import re
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
    html = (write_report(journal, tmp_path / "r") / "report.html").read_text()
    trend = _svgs(html)["trend"]
    # one line through the earlier suite and this one, labelled with both scores
    line = trend.find(".//{*}g[@id='trend-score-line']/{*}path")
    assert line is not None and len(re.findall(r"[ML] ", line.get("d", ""))) == 2
    assert _texts(trend).count(f"{journal['resilience_score']:g}") >= 2


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
    # a crash is no gate kill; a halt by another task before the gate ran is no gate mutant
    assert journal["mutation"]["mutants"] == 2 and journal["mutation"]["killed"] == 1
    assert [m["experiment"] for m in journal["mutation"]["not_gate_mutants"]] == [
        "retried-then-caught-by-task"
    ]

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


# ------------------------------------------------------------------ issue 15: a report people read
SVG = "{http://www.w3.org/2000/svg}"


def _svgs(html: str) -> dict[str, ET.Element]:
    """Each inline plot by name (its ids are prefixed ``<name>-``), parsed as XML."""
    out = {}
    for chunk in re.findall(r"<svg\b.*?</svg>", html, flags=re.S):
        root = ET.fromstring(chunk)
        figure = root.find(f".//{SVG}g[@id]")
        assert figure is not None, chunk[:200]
        out[figure.get("id", "").split("-", 1)[0]] = root
    return out


def _texts(element: ET.Element | None) -> list[str]:
    if element is None:
        return []
    return ["".join(t.itertext()).strip() for t in element.iter(f"{SVG}text")]


def _label(svg: ET.Element, name: str, part: str) -> str:
    texts = _texts(svg.find(f".//{SVG}g[@id='{name}-{part}']"))
    return " ".join(t for t in texts if t)


def test_every_plot_has_a_title_labelled_axes_with_units_and_a_legend(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    _suite(ledger, "s1")
    _suite(ledger, "s2")
    journal = build_journal(ledger, "s2")
    journal["sweep"] = {
        "experiment": "nulls",
        "minimum_detected": {"airflow": 0.05},
        "points": [
            {"orchestrator": "airflow", "intensity": i, "verdict": v}
            for i, v in ((0.01, "silent"), (0.05, "caught"), (0.5, "caught"))
        ],
    }
    html = (write_report(journal, tmp_path / "r") / "report.html").read_text()
    svgs = _svgs(html)
    assert set(svgs) == {"verdicts", "trend", "latency", "sweep"}
    units = {
        "verdicts": "(count)",
        "trend": "(UTC)",
        "latency": "(s)",
        "sweep": "share of rows",
    }
    for name, svg in svgs.items():
        assert svg.get("role") == "img" and svg.get("aria-label"), name
        assert svg.find(f"{SVG}title") is not None and svg.find(f"{SVG}title").text, name
        assert _label(svg, name, "title"), name
        assert _label(svg, name, "xlabel") and _label(svg, name, "ylabel"), name
        assert units[name] in _label(svg, name, "xlabel") + _label(svg, name, "ylabel"), name
        # a legend names every series: verdicts, score + this suite, detection + alert
        legend = _texts(svg.find(f".//{SVG}g[@id='{name}-legend_1']"))
        assert legend, name
    assert {"caught", "silent", "unalerted"} <= set(_texts(svgs["verdicts"]))
    assert {"detection", "alert delivered"} <= set(_texts(svgs["latency"]))
    assert "resilience score (0-100)" in _label(svgs["trend"], "trend", "ylabel")
    assert {"0.01", "0.05", "0.5"} <= set(_texts(svgs["sweep"]))  # ticks at the intensities
    # ids are unique across the inline plots (clip paths and markers resolve to their own plot)
    ids = re.findall(r"\bid=[\"']([^\"']+)", html)
    assert len(ids) == len(set(ids))
    assert "<script" not in html and "://" not in re.sub(r"xmlns(:\w+)?=\"[^\"]+\"", "", html)


def test_summary_names_pipeline_counts_score_and_worst_finding(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    _suite(ledger, "s1")
    journal = build_journal(ledger, "s1")
    html = (write_report(journal, tmp_path / "r") / "report.html").read_text()
    parser = _Text()
    parser.feed(html)
    text = " ".join(" ".join(parser.text).split())
    assert "resilience suite: feature_pipeline" in text  # the report names the pipeline
    # _suite: nulls caught, dups silent, unseen unalerted (halted, no alert), control clean
    counts = re.search(r"<p id='summary-counts'>(.*?)</p>", html, flags=re.S)
    assert counts is not None
    summary = re.sub(r"<[^>]+>", "", counts.group(1))
    assert summary.startswith(
        "Of 3 fault experiments: 2 caught (1 of them without an alert), 1 silent (nobody "
        "noticed), 0 not reached."
    ), summary
    assert f"Resilience score: {journal['resilience_score']:g} out of 100" in summary
    assert "clean control run passed" in summary
    worst = re.search(r"<p id='worst-finding'>(.*?)</p>", html, flags=re.S)
    assert worst is not None
    worst_text = re.sub(r"<[^>]+>", "", worst.group(1))
    assert "Experiment dups" in worst_text and "went unnoticed on airflow" in worst_text
    assert journal["mutation"]["survivors"][0]["expectation"].split("(")[0] in worst_text
    # the summary comes before every detail section
    assert html.index("id='worst-finding'") < html.index("<h2>Fault × gate matrix</h2>")


def test_worst_finding_follows_the_journal() -> None:
    from mlchaos_orchestration.reporting.report import summary_sentence, worst_finding

    def run(exp: str, verdict: str, control: bool = False, **kw: object) -> dict:
        return {
            "experiment": exp,
            "orchestrator": kw.pop("orchestrator", "airflow"),
            "verdict": verdict,
            "control": control,
            "reason": kw.pop("reason", f"reason of {exp}"),
            "faults": [{"fault": "nulls", "columns": ["a"], "fraction": 0.2}],
            "consumer": "train",
            "alert_expected": kw.pop("alert_expected", True),
        }

    def journal(*runs: dict) -> dict:
        return {"runs": list(runs), "mutation": {"survivors": []}}

    all_caught = journal(run("c", "clean", True), run("n", "caught"))
    assert worst_finding(all_caught).startswith("Nothing went unnoticed")
    broken = journal(run("c", "false_alarm", True, reason="gate failed on clean data"))
    assert "control run failed on airflow" in worst_finding(broken)
    assert "gate failed on clean data" in worst_finding(broken)
    crash = journal(run("c", "clean", True), run("x", "gate_crashed"), run("y", "not_reached"))
    assert worst_finding(crash).startswith("Experiment x (nulls in `a` (20%))")
    assert "crashed" in worst_finding(crash)
    quiet = journal(run("u", "unalerted", alert_expected=False), run("r", "not_reached"))
    assert worst_finding(quiet).startswith("Experiment r")  # no channel declared: not a finding
    both = journal(
        run("s", "silent", orchestrator="dagster"), run("s", "silent"), run("s2", "silent")
    )
    assert "on airflow and dagster" in worst_finding(both) and "3 silent runs" in worst_finding(
        both
    )
    assert summary_sentence(both["runs"]) == (
        "Of 3 fault experiments: 0 caught, 3 silent (nobody noticed), 0 not reached."
    )
    assert summary_sentence([run("c", "clean", True)]) == "No fault experiments ran."


def test_class_removal_is_not_labelled_with_the_fraction_it_ignores(tmp_path: Path) -> None:
    from mlchaos_orchestration.reporting.scoring import describe_fault

    spec = {"fault": "class_removal", "label": "is_fraud", "fraction": 0.1, "classes": None}
    assert describe_fault(spec) == "class_removal in `is_fraud` (minority class)"
    assert describe_fault({**spec, "classes": [1]}) == "class_removal in `is_fraud` (class 1)"
    assert describe_fault({"fault": "mislabel", "label": "y", "fraction": 0.1}).endswith("(10%)")
    assert "%" not in describe_fault({"fault": "drop_column", "columns": ["a"], "fraction": 0.3})

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    run = ledger.start_run(
        "remove-class",
        pipeline="p",
        orchestrator="plain",
        suite_id="cr",
        meta={"experiment": {"faults": [{**spec, "fraction": 0.25, "max_rows": None}]}},
    )
    ledger.set_verdict(run, {"verdict": "silent", "reason": "consumer started"})
    ledger.end_run(run)
    journal = build_journal(ledger, "cr")
    html = (write_report(journal, tmp_path / "r") / "report.html").read_text()
    assert "class_removal(label=is_fraud)" in html
    assert "25%" not in html and "fraction=0.25" not in html
    assert journal["mutation"]["survivors"][0]["what"] == (
        "class_removal in `is_fraud` (minority class)"
    )


def test_numbers_are_plain_in_journal_junit_and_html(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    message = (
        'GateFailed: 1/3 expectations failed: ExpectColumnMaxToBeBetween(column="a", '
        "max_value=np.float64(100.0)) [observed np.float64(114.99999999999999)] np.True_"
    )
    _judged(
        ledger,
        "max",
        [
            ("fault_applied", "", STORED),
            ("gate_failed", "validate", {"checks_run": True, "message": message}),
        ],
    )
    out = write_report(build_journal(ledger, "ev"), tmp_path / "reports")
    journal = json.loads((out / "journal.json").read_text())
    lines = journal["runs"][0]["evidence_text"]
    assert any("max_value=100.0) [observed 114.99999999999999] True" in x for x in lines), lines
    for name in ("report.html", "junit.xml"):
        text = (out / name).read_text()
        assert "np.float64" not in text and "np.True_" not in text, name
        assert "observed 114.99999999999999" in text, name


def test_plain_numbers() -> None:
    from mlchaos_orchestration.core.text import plain, plain_numbers

    assert plain_numbers("x=np.float64(1.5), n=np.int64(-3), b=np.False_") == "x=1.5, n=-3, b=False"
    assert plain_numbers("numpy.float32(2.0) and float64(7)") == "2.0 and 7"
    assert plain_numbers("np.str_('a') np.datetime64('2026-01-01','D')") == "'a' '2026-01-01'"
    assert plain_numbers("myfloat64(3) stays") == "myfloat64(3) stays"
    import numpy as np

    value = plain({"a": [np.float64(1.25), np.int64(2)], "b": np.bool_(True)})
    assert value == {"a": [1.25, 2], "b": True} and type(value["a"][0]) is float
    assert repr(value) == "{'a': [1.25, 2], 'b': True}"


def test_plot_labels_are_escaped_and_never_mathtext() -> None:
    from mlchaos_orchestration.reporting.plots import latency_svg

    runs = [
        {
            "orchestrator": f"{HOSTILE}$x^2$",
            "experiment": "e",
            "detection_latency_s": 1.5,
            "alert_latency_s": None,
        }
    ]
    svg = latency_svg(runs)
    assert HOSTILE not in svg and "&lt;script&gt;" in svg
    root = ET.fromstring(svg)
    assert any("$x^2$" in t for t in _texts(root))  # the dollar signs are text, not math


def test_plots_handle_one_point_unknown_dates_and_zero_intensity() -> None:
    from mlchaos_orchestration.reporting import plots

    one = ET.fromstring(plots.trend_svg([{"at": "2026-11-29T10:00:00+00:00", "score": 50.0}]))
    assert "suite run start (UTC)" in _label(one, "trend", "xlabel") and "50" in _texts(one)
    undated = ET.fromstring(plots.trend_svg([{"at": None, "score": 40}, {"at": "?", "score": 0}]))
    assert _label(undated, "trend", "xlabel") == "suite run (oldest first)"
    points = [
        {"orchestrator": "plain", "intensity": 0.0, "verdict": "silent"},
        {"orchestrator": "plain", "intensity": 0.5, "verdict": "caught"},
    ]
    linear = ET.fromstring(plots.sweep_svg(points, "e", "rate"))
    assert _label(linear, "sweep", "xlabel") == "fault intensity: rate"  # no log scale at 0
    alert_only = [{"orchestrator": "a", "experiment": "b", "alert_latency_s": 3.0}]
    assert "3.00" in _texts(ET.fromstring(plots.latency_svg(alert_only)))
    assert plots.verdicts_svg([{"control": True, "verdict": "clean", "orchestrator": "a"}]) == ""
    assert plots.trend_svg([]) == "" and plots.latency_svg([]) == ""


def test_a_fault_that_halted_the_run_before_the_gate_ran_is_not_a_gate_mutant() -> None:
    from mlchaos_orchestration.reporting.scoring import mutation_report

    def row(name: str, verdict: str, gate: dict, halted_by: str) -> dict:
        return {
            "experiment": name,
            "orchestrator": "airflow",
            "verdict": verdict,
            "halted_by": halted_by,
            "halted_by_gate": halted_by == "validate",
            "faults": [{"fault": "nulls", "columns": ["amount"]}],
            "evidence": {"gate": gate},
        }

    rows = [
        row("nulls", "caught", {"ran_checks": True, "passed": False}, "validate"),
        row("connector", "caught", {"ran_checks": None}, "build_features"),
        row("drift", "silent", {"ran_checks": True, "passed": True}, ""),
    ]
    report = mutation_report(rows)
    assert (report["killed"], report["mutants"]) == (1, 2)
    assert report["not_gate_mutants"] == [
        {
            "experiment": "connector",
            "orchestrator": "airflow",
            "why": "halted by build_features before the gate ran",
        }
    ]
    assert [s["experiment"] for s in report["survivors"]] == ["drift"]
