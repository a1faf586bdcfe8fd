"""The Resilience view's content, without Airflow: ledger data in, escaped HTML / JSON out."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlchaos_orchestration.airflow.ui import resilience_app, resilience_view
from mlchaos_orchestration.airflow.ui.data import snapshot
from mlchaos_orchestration.airflow.ui.render import render_page
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.targets import Target

HOSTILE = "<script>alert(1)</script>"


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def ledger(mlchaos_home: Path) -> Ledger:
    return Ledger(f"sqlite:///{mlchaos_home / 'ledger.db'}")


def test_runs_verdicts_and_leases_are_rendered_escaped(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    caught = ledger.start_run("nulls-amount", pipeline="feature_pipeline", orchestrator="airflow")
    ledger.set_verdict(
        caught,
        {
            "verdict": "caught",
            "reason": "halted by validate_features",
            "detection_latency_s": 1.5,
            "alert_latency_s": 2.25,
        },
    )
    hostile = ledger.start_run(HOSTILE, pipeline=f'p"{HOSTILE}', orchestrator="dagster")
    ledger.set_verdict(hostile, {"verdict": HOSTILE, "reason": HOSTILE})
    target = Target.parse(str(tmp_path / f"raw{HOSTILE}"))
    ledger.acquire_lease(
        run_id=caught, fault="nulls", targets=[target], spec={}, ttl_s=60, scope=HOSTILE
    )
    monkeypatch.setenv("MLCHAOS_REPORTS_DIR", str(tmp_path / "none"))

    snap = snapshot(ledger)
    page = render_page(snap)
    parsed = _Collect()
    parsed.feed(page)
    text = "".join(parsed.text)

    assert "script" not in parsed.tags  # the hostile values stayed text
    assert text.count(HOSTILE) >= 5  # experiment, pipeline, verdict, reason, lease scope/target
    assert "&lt;script&gt;" in page
    assert 'data-verdict="caught"' in page and "1.50 s" in page and "2.25 s" in page
    assert "nulls-amount" in text and "feature_pipeline" in text
    assert 'data-testid="leases"' in page and "No report yet" in text
    body = snap.as_json()
    assert [r["experiment"] for r in body["runs"]] == [HOSTILE, "nulls-amount"]
    assert body["runs"][1]["verdict"] == "caught" and body["latest_report"] is False
    assert body["leases"][0]["fault"] == "nulls" and body["leases"][0]["run_id"] == caught


def test_latest_report_link_appears_when_a_report_exists(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latest = tmp_path / "reports" / "latest"
    latest.mkdir(parents=True)
    monkeypatch.setenv("MLCHAOS_REPORTS_DIR", str(tmp_path / "reports"))
    assert 'data-testid="report-missing"' in render_page(snapshot(ledger))
    (latest / "report.html").write_text("<html>report</html>")
    assert 'href="report"' in render_page(snapshot(ledger))


def test_plugin_entries_are_cheap_and_well_formed() -> None:
    app = resilience_app()
    assert app["url_prefix"] == "/mlchaos" and app["name"]
    assert callable(app["app"])  # an ASGI app, built on its first request
    view = resilience_view()
    assert view["href"] == "/mlchaos/" and view["destination"] == "nav"
    assert "url_route" not in view  # its own tab: links to run pages must be able to open
