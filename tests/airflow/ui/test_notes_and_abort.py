"""Run-note texts, the form's first-task checks, and the Resilience app's abort + report routes
(FastAPI TestClient with Airflow's auth replaced by fixed users; a real ledger and a real fault)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.airflow.params import check_fields, check_target_dag
from mlchaos_orchestration.airflow.verdicts import (
    NOTE_MARK,
    experiment_note,
    ledger_run_for,
    target_note,
)
from mlchaos_orchestration.core import control
from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.errors import SpecError

LINK = "[experiment run](http://af/dags/mlchaos_experiment/runs/manual__1)"


def _run(verdict: str = "caught") -> dict[str, Any]:
    return {
        "verdict_detail": {"verdict": verdict, "reason": "halted by gate validate_features"},
        "meta": {"experiment": {"faults": [{"fault": "nulls", "fraction": 0.2, "columns": ["a"]}]}},
    }


def test_target_note_puts_verdict_reason_and_link_back_on_its_first_line() -> None:
    first, second = target_note(_run(), experiment_link=LINK).split("\n\n")
    assert first.startswith(NOTE_MARK) and "verdict **caught**" in first
    assert "halted by gate validate_features" in first and first.endswith(LINK)
    assert second == "fault: nulls (fraction=0.2, columns=a)"
    assert "running" in target_note(None, experiment_link=LINK, running=True).split("\n\n")[0]


def test_experiment_note_refusal_dry_run_and_length_limit() -> None:
    refused = experiment_note(None, refused="mlchaos: refused, nothing touched: no DAG 'x'")
    assert refused == f"{NOTE_MARK} refused, nothing touched: no DAG 'x'"
    plan = experiment_note(_run("not_applied"), plan=["would empty /raw/ds=2026-11-30"])
    assert "dry run, nothing touched; would apply: would empty /raw/ds=2026-11-30" in plan
    long = experiment_note(_run(), target_link="x" * 2000)
    assert len(long) == 1000 and long.endswith("\u2026")


def test_ledger_run_for_finds_the_run_of_an_orchestrator_run(mlchaos_home: Path) -> None:
    ledger = Ledger()
    exp = parse_experiment({"name": "e1", "faults": [{"fault": "nulls", "columns": ["a"]}]})
    control.begin_run(
        exp, run_key="mlchaos__r1", orchestrator="airflow", pipeline="p", ledger=ledger
    )
    found = ledger_run_for("p", "mlchaos__r1", ledger)
    assert found is not None and found["experiment"] == "e1"
    assert ledger_run_for("other", "mlchaos__r1", ledger) is None


@pytest.mark.parametrize(
    ("dag", "message"),
    [("nope", "does not exist"), ("plain", "has no chaos tasks"), ("chaos", None)],
)
def test_target_dag_check_names_the_reason(dag: str, message: str | None) -> None:
    dags = {"chaos": True, "plain": False}
    if message is None:
        check_target_dag(dag, dags)
        return
    with pytest.raises(SpecError, match=message) as info:
        check_target_dag(dag, dags)
    assert "DAGs with add_chaos: chaos" in str(info.value) and "\n" not in str(info.value)


def test_fields_the_fault_needs_are_checked_in_one_line() -> None:
    with pytest.raises(SpecError, match="choose a target DAG"):
        check_fields({"fault": "nulls", "columns": ["a"]})
    with pytest.raises(SpecError, match="needs at least one column"):
        check_fields({"target_dag": "d", "fault": "nulls", "columns": []})
    check_fields({"target_dag": "d", "fault": "upstream_outage", "columns": None})


# ---------------------------------------------------------------------- the app
@pytest.fixture
def client(mlchaos_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from fastapi.testclient import TestClient

    from mlchaos_orchestration.airflow.ui import app as app_module
    from mlchaos_orchestration.airflow.ui.auth import require_run_editor, require_run_reader

    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", str(tmp_path))
    monkeypatch.setenv("MLCHAOS_REPORTS_LOCATION", str(tmp_path / "published"))
    monkeypatch.setattr(app_module, "ui_base", lambda: "/")
    app = app_module.create_app()
    app.dependency_overrides[require_run_reader] = lambda: "reader"
    app.dependency_overrides[require_run_editor] = lambda: "editor"
    return TestClient(app, base_url="http://af.test")


def test_abort_restores_the_fault_from_the_view(client: Any, tmp_path: Path) -> None:
    from mlchaos_orchestration.airflow.ui.auth import same_origin

    partition = tmp_path / "raw" / "ds=2026-11-30"
    partition.mkdir(parents=True)
    (partition / "part-0.csv").write_text("a\n1\n")
    exp = parse_experiment(
        {"name": "outage", "faults": [{"fault": "upstream_outage", "target": str(partition)}]}
    )
    run_id = control.begin_run(exp, run_key="r1", orchestrator="airflow", pipeline="p")
    control.inject(run_id, exp, exp.faults[0], seed=1, ds="2026-11-30")
    assert not partition.exists()

    page = client.get("/")
    assert f"abort?run={run_id}" in page.text
    confirm = client.get("/abort", params={"run": run_id})
    assert "Abort this chaos run?" in confirm.text and 'method="post"' in confirm.text
    assert partition.exists() is False  # a GET changes nothing

    done = client.post(
        "/abort",
        content=f"run={run_id}",
        headers={"Origin": "http://af.test"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "1%20fault%28s%29%20restored" in done.headers["location"]
    assert (partition / "part-0.csv").read_text() == "a\n1\n"
    assert not Ledger().live_leases()
    assert "1 fault(s) restored" in client.get(done.headers["location"]).text

    # the real dependency refuses a cross-site form post (cookie auth is forgeable)
    class _Req:
        method = "POST"
        headers = {"origin": "http://evil.test", "host": "af.test"}

    assert same_origin(_Req()) is False  # type: ignore[arg-type]
    _Req.headers = {"origin": "http://af.test", "host": "af.test"}
    assert same_origin(_Req()) is True  # type: ignore[arg-type]


def test_published_reports_are_listed_linked_and_served(client: Any, tmp_path: Path) -> None:
    from mlchaos_orchestration.reporting.location import reports_location

    written = tmp_path / "written" / "20261130T000000Z"
    written.mkdir(parents=True)
    journal = {"suite_id": "s1", "runs": [{"pipeline": "p", "verdict": "caught"}]}
    (written / "journal.json").write_text(json.dumps(journal))
    (written / "report.html").write_text("<html><body>weekly scorecard</body></html>")
    location = reports_location()
    assert location is not None
    location.publish(written)

    page = client.get("/").text
    assert 'href="reports/20261130T000000Z/report.html"' in page and "caught: 1" in page
    report = client.get("/reports/20261130T000000Z/report.html")
    assert report.status_code == 200 and "weekly scorecard" in report.text
    assert "sandbox" in report.headers["content-security-policy"]
    assert client.get("/reports/20261130T000000Z/secret.txt").status_code == 400
    assert client.get("/reports/nope/report.html").status_code == 404


def test_filters_narrow_the_runs(client: Any) -> None:
    ledger = Ledger()
    for pipeline, verdict in (("p1", "caught"), ("p2", "silent")):
        run = ledger.start_run(f"e-{pipeline}", pipeline=pipeline, orchestrator="airflow")
        ledger.set_verdict(run, {"verdict": verdict, "reason": "r"})
    body = client.get("/api/runs", params={"verdict": "silent"}).json()
    assert [r["pipeline"] for r in body["runs"]] == ["p2"]
    assert [
        r["pipeline"] for r in client.get("/api/runs", params={"dag": "p1"}).json()["runs"]
    ] == ["p1"]
    page = client.get("/", params={"dag": "p1"}).text
    assert "e-p1" in page and "e-p2" not in page.split('data-testid="runs"')[1]


def test_only_experiment_and_chaos_runs_get_notes() -> None:
    from types import SimpleNamespace

    from mlchaos_orchestration.airflow.ui.run_notes import annotate, is_annotated

    plain = SimpleNamespace(dag_id="etl", conf={"x": 1}, run_id="manual__1")
    assert not is_annotated(plain)
    assert is_annotated(SimpleNamespace(dag_id="etl", conf={"mlchaos": {}}, run_id="r"))
    assert is_annotated(SimpleNamespace(dag_id="mlchaos_experiment", conf={}, run_id="r"))
    annotate(plain, finished=True)  # no ORM session touched, no note attribute read
    assert not hasattr(plain, "note")
