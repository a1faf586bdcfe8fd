"""Reports location: publish / list / read against a local folder and a real moto S3 server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.errors import ConfigError
from mlchaos_orchestration.reporting.location import (
    META_FILE,
    REPORT_FILES,
    ReportsLocation,
    publish_report,
    reports_location,
)
from mlchaos_orchestration.reporting.report import build_journal, write_report


def _written_report(tmp: Path, suite_id: str, verdicts: list[str], pipeline: str) -> Path:
    """A real report folder (journal / JUnit / HTML) of a suite with one run per verdict."""
    ledger = Ledger(f"sqlite:///{tmp / 'ledger.db'}")
    for i, verdict in enumerate(verdicts):
        run = ledger.start_run(
            f"exp-{i}", pipeline=pipeline, orchestrator="airflow", control=i == 0, suite_id=suite_id
        )
        ledger.set_verdict(run, {"verdict": verdict, "reason": "test"})
        ledger.end_run(run)
    return write_report(build_journal(ledger, suite_id), tmp / "written")


@pytest.fixture(params=["folder", "s3"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> ReportsLocation:
    if request.param == "folder":
        return ReportsLocation(str(tmp_path / "published"))
    bucket = request.getfixturevalue("s3_bucket")  # moto server + MLCHAOS_S3_ENDPOINT_URL set
    found = reports_location(f"s3://{bucket}/weekly/reports")
    assert found is not None
    return found


def test_publish_list_read_roundtrip(location: ReportsLocation, tmp_path: Path) -> None:
    first = _written_report(tmp_path / "a", "suite-a", ["clean", "caught", "silent"], "dag_a")
    time.sleep(1.1)  # written reports are named by the second
    second = _written_report(tmp_path / "b", "suite-b", ["clean", "caught"], "dag_b")

    assert location.list() == []
    pub_a = location.publish(first)
    pub_b = location.publish(second)
    assert pub_a.name == first.name and pub_b.name == second.name
    assert pub_a.files == list(REPORT_FILES)
    assert pub_a.summary == {
        "runs": 3,
        "verdicts": {"clean": 1, "caught": 1, "silent": 1},
        "resilience_score": pub_a.summary["resilience_score"],
    }
    assert pub_a.target == "dag_a" and pub_b.suite_id == "suite-b"

    listed = location.list()
    assert [r.suite_id for r in listed] == ["suite-b", "suite-a"]  # newest first
    assert listed[1] == pub_a  # the stored record round-trips
    assert [r.suite_id for r in location.list(limit=1)] == ["suite-b"]
    for file in REPORT_FILES:
        assert location.read(pub_a.name, file) == (first / file).read_bytes()
    assert json.loads(location.read(pub_b.name, "journal.json"))["suite_id"] == "suite-b"


def test_read_refuses_other_files_and_names(location: ReportsLocation, tmp_path: Path) -> None:
    pub = location.publish(_written_report(tmp_path, "s", ["clean"], "d"))
    for bad_file in (META_FILE, "../journal.json", "report.htm", ""):
        with pytest.raises(ValueError, match="not a report file"):
            location.read(pub.name, bad_file)
    for bad_name in ("..", "../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="not a report name"):
            location.read(bad_name, "report.html")
    with pytest.raises(FileNotFoundError):
        location.read("20000101T000000Z", "report.html")


def test_same_name_twice_gets_a_new_name(location: ReportsLocation, tmp_path: Path) -> None:
    report = _written_report(tmp_path, "s1", ["clean"], "d")
    one, two = location.publish(report), location.publish(report)
    assert two.name == f"{one.name}-1"
    assert {r.name for r in location.list()} == {one.name, two.name}
    # re-publishing under a given name replaces that report (a sweep rewrites its report)
    (report / "report.html").write_text("<h1>with the sweep</h1>")
    again = location.publish(report, name=one.name)
    assert again.name == one.name and len(location.list()) == 2
    assert location.read(one.name, "report.html") == b"<h1>with the sweep</h1>"
    with pytest.raises(ValueError, match="not a report name"):
        location.publish(report, name="../x")


def test_report_written_inside_the_folder_is_indexed_in_place(tmp_path: Path) -> None:
    """``--reports-dir`` = the location: nothing is copied, the folder gets its record; a folder
    written without publishing is still listed (from its journal); ``latest`` is not a report."""
    root = tmp_path / "written"
    unpublished = _written_report(tmp_path, "old", ["clean"], "d")
    time.sleep(1.1)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    run = ledger.start_run("x", pipeline="d", suite_id="new")
    ledger.set_verdict(run, {"verdict": "caught"})
    report = write_report(build_journal(ledger, "new"), root)
    location = ReportsLocation(str(root))
    pub = location.publish(report)
    assert pub.name == report.name and (report / META_FILE).is_file()
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [unpublished.name, report.name, "latest"]
    )
    listed = location.list()
    assert [r.suite_id for r in listed] == ["new", "old"]
    assert listed[1].files == list(REPORT_FILES)


def test_reports_location_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    monkeypatch.delenv("MLCHAOS_REPORTS_LOCATION", raising=False)
    monkeypatch.delenv("AIRFLOW__MLCHAOS__REPORTS_LOCATION", raising=False)
    assert reports_location() is None
    assert publish_report(tmp_path) is None  # nothing configured: nothing published
    monkeypatch.setenv("AIRFLOW__MLCHAOS__REPORTS_LOCATION", str(tmp_path / "r"))
    found = reports_location()
    assert found is not None and found.root == tmp_path / "r"
    monkeypatch.setenv("MLCHAOS_REPORTS_LOCATION", "s3://bucket/p")
    monkeypatch.setenv("MLCHAOS_S3_ENDPOINT_URL", s3_endpoint)
    s3 = reports_location()
    assert s3 is not None and s3.url == "s3://bucket/p" and s3.root is None
    assert s3._store.endpoint_url == s3_endpoint  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "gs://bucket/x", "http://host/r"])
def test_bad_urls_are_one_line_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="reports location"):
        ReportsLocation(url)


def test_publish_needs_a_written_report(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no journal.json"):
        ReportsLocation(str(tmp_path / "loc")).publish(tmp_path)


def test_weekly_suite_report_marks_missing_verdicts_and_trends_per_target(
    tmp_path: Path, mlchaos_home: Path
) -> None:
    """The weekly DAG's report task: runs without a verdict become ``error`` rows, the trend
    holds earlier suites of this target only, the report lands in the location."""
    from mlchaos_orchestration.airflow.resilience import publish_suite, run_key
    from mlchaos_orchestration.core.control import run_id_for

    ledger = Ledger()
    for suite, pipeline in (("old-mine", "dag_a"), ("old-other", "dag_b")):
        run = ledger.start_run("control", pipeline=pipeline, control=True, suite_id=suite)
        ledger.set_verdict(run, {"verdict": "clean"})
    keys = {name: run_key(name, "manual__1") for name in ("control", "nulls", "never")}
    judged = ledger.start_run(
        "control", pipeline="dag_a", run_id=run_id_for(keys["control"], "control"), suite_id="w1"
    )
    ledger.set_verdict(judged, {"verdict": "clean"})
    ledger.start_run(
        "nulls", pipeline="dag_a", run_id=run_id_for(keys["nulls"], "nulls"), suite_id="w1"
    )

    out = publish_suite(
        suite_id="w1",
        target_dag_id="dag_a",
        experiments_file="exp.yaml",
        runs=keys,
        location=str(tmp_path / "loc"),
    )
    assert out["url"] == str(tmp_path / "loc") and out["suite_id"] == "w1"
    journal = json.loads(ReportsLocation(out["url"]).read(out["name"], "journal.json"))
    verdicts = {r["experiment"]: (r["verdict"], r["reason"]) for r in journal["runs"]}
    assert verdicts["control"][0] == "clean"
    assert verdicts["nulls"] == (
        "error",
        f"no verdict: target run {keys['nulls']} ended without judging",
    )
    assert verdicts["never"][0] == "error" and "never started" in verdicts["never"][1]
    assert [h["suite_id"] for h in journal["history"]] == ["old-mine"]
    assert journal["meta"]["crashed"] and journal["meta"]["missing_verdicts"] == 2
    assert out["summary"]["verdicts"] == {"clean": 1, "error": 2}


def test_suite_publishes_its_written_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_bucket: str
) -> None:
    """``mlchaos suite`` / ``demo``: the written report goes to the configured location (here
    S3); a location that cannot take it leaves the local report and says why in one line."""
    from mlchaos_orchestration.suite.run import SuiteResult, _publish

    report = _written_report(tmp_path, "s9", ["clean", "silent"], "p")
    result = SuiteResult("s9", report, {}, 1.0)
    monkeypatch.delenv("AIRFLOW__MLCHAOS__REPORTS_LOCATION", raising=False)
    monkeypatch.delenv("MLCHAOS_REPORTS_LOCATION", raising=False)
    _publish(result)
    assert result.published is None and result.publish_error is None  # nothing configured

    monkeypatch.setenv("MLCHAOS_REPORTS_LOCATION", f"s3://{s3_bucket}/suites")
    _publish(result)
    url, published = result.published
    assert url == f"s3://{s3_bucket}/suites" and published.suite_id == "s9"
    assert [r.name for r in reports_location().list()] == [report.name]  # type: ignore[union-attr]

    failing = SuiteResult("s9", report, {}, 1.0)
    monkeypatch.setenv("MLCHAOS_REPORTS_LOCATION", "s3://no-such-bucket-mlchaos/x")
    _publish(failing)
    assert failing.published is None and (report / "report.html").is_file()
    assert failing.publish_error and "NoSuchBucket" in failing.publish_error
    assert "\n" not in failing.publish_error
