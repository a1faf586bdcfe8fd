"""report.html in a real browser (Debian's chromium through Playwright) at 1300 px: nothing
overflows horizontally, every plot shows a title and labelled axes inside its own box, and the
summary is on the first screen. The screenshot is kept as ``report-1300.png`` in the test's
tmp_path (or under ``$MLCHAOS_SCREENSHOT_DIR``) for a human to look at."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.reporting.report import build_journal, write_report

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WIDTH = 1300
LONG = "/srv/data/" + "very_long_partition_directory_name_" * 4 + "events/ds=2026-11-20"


def ensure_chromium() -> Path:
    """Debian's chromium, installed through the project's bootstrap if missing (never
    ``playwright install``), as tests/e2e does."""
    if not CHROMIUM.exists():
        subprocess.run(
            [str(REPO / "scripts" / "bootstrap.sh"), "--with-browser"], check=True, timeout=600
        )
    assert CHROMIUM.exists(), "chromium missing after scripts/bootstrap.sh --with-browser"
    return CHROMIUM


EXPERIMENTS = [
    ("control", True, [], "clean", "clean run passed the gate"),
    (
        "outage-missing",
        False,
        [{"fault": "upstream_outage", "target": LONG, "mode": "missing"}],
        "silent",
        f"consumer train_model started; gate validate_features read the faulted {LONG}",
    ),
    (
        "outage-empty",
        False,
        [{"fault": "upstream_outage", "target": LONG, "mode": "empty"}],
        "caught",
        "halted by gate validate_features, alerted via mlchaos_webhook",
    ),
    (
        "nulls-amount",
        False,
        [{"fault": "nulls", "columns": ["amount", "amount_log"], "fraction": 0.2}],
        "caught",
        "halted by gate validate_features, alerted via mlchaos_webhook",
    ),
    (
        "remove-minority-class-of-the-label",
        False,
        [{"fault": "class_removal", "label": "is_fraud", "fraction": 0.1}],
        "unalerted",
        "halted by gate validate_features, no alert delivered",
    ),
    (
        "duplicates",
        False,
        [{"fault": "duplicate_rows", "fraction": 0.1}],
        "silent",
        "consumer train_model started; duplicate_rows changed 200 rows in memory",
    ),
    (
        "connector-failure",
        False,
        [{"fault": "connector_failure", "url": "sqlite:///" + LONG + ".db", "rate": 0.5}],
        "not_reached",
        "no task read the target: 0 calls intercepted",
    ),
]


def _realistic_suite(ledger: Ledger, suite_id: str, base_ts: float, silent_ok: bool) -> None:
    for orch in ("airflow", "dagster"):
        for i, (name, control, faults, verdict, reason) in enumerate(EXPERIMENTS):
            if silent_ok and verdict == "silent":
                verdict, reason = "caught", "halted by gate validate_features, alerted"
            run = ledger.start_run(
                name,
                pipeline="feature_pipeline",
                orchestrator=orch,
                control=control,
                suite_id=suite_id,
                meta={"experiment": {"faults": faults, "gate": "validate_features"}},
            )
            ledger.record(run, "run_started", ts=base_ts + i)
            if faults:
                ledger.record(
                    run,
                    "fault_applied",
                    ts=base_ts + i + 0.01,
                    fault=faults[0]["fault"],
                    lease_id=f"L{i}",
                    targets=[LONG],
                    rows_changed=200,
                    fingerprint={LONG: "f23c9f02bbd0" * 5},
                )
            halted = verdict in ("caught", "unalerted")
            ledger.set_verdict(
                run,
                {
                    "verdict": verdict,
                    "reason": reason,
                    "detection_latency_s": 0.05 + 0.03 * i if halted else None,
                    "alert_latency_s": 0.07 + 0.03 * i if verdict == "caught" else None,
                    "halted_by_gate": halted,
                    "evidence": {
                        "faults": [
                            {"fault": f["fault"], "targets": [LONG], "rows_changed": 200}
                            for f in faults
                        ],
                        "gate": {
                            "task": "validate_features",
                            "ran_checks": True,
                            "passed": not halted,
                            "failed": [
                                {"expectation": "ExpectColumnValuesToNotBeNull", "column": "amount"}
                            ]
                            if halted
                            else [],
                        },
                    },
                },
            )
            ledger.end_run(run)
        # the history's suites start on different days
        base_ts += 3600


def _report(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    day = 86_400.0
    _realistic_suite(ledger, "w1", 1_795_000_000.0, silent_ok=False)
    _realistic_suite(ledger, "w2", 1_795_000_000.0 + 7 * day, silent_ok=True)
    _realistic_suite(ledger, "w3", 1_795_000_000.0 + 14 * day, silent_ok=False)
    journal = build_journal(ledger, "w3", meta={"experiments_file": "/x/experiments.yaml"})
    assert [h["suite_id"] for h in journal["history"]] == ["w1", "w2"]
    # the ledger stamps runs with the wall clock: spread the earlier suites a week apart
    for weeks_ago, entry in zip((2, 1), journal["history"], strict=True):
        entry["at"] = f"2026-11-{29 - 7 * weeks_ago:02d}T06:00:00+00:00"
    journal["sweep"] = {
        "experiment": "nulls-amount",
        "minimum_detected": {"airflow": 0.01, "dagster": 0.05},
        "points": [
            {"orchestrator": o, "intensity": v, "verdict": "caught" if v >= low else "silent"}
            for o, low in (("airflow", 0.01), ("dagster", 0.05))
            for v in (0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5)
        ],
    }
    from mlchaos_orchestration.reporting.report import html_report

    out = write_report(journal, tmp_path / "reports")
    (out / "report.html").write_text(html_report(journal))
    return out / "report.html", journal


# what the page reports about itself: overflow, and each plot's labels as rendered
MEASURE = """() => {
  const doc = document.documentElement;
  const wide = [...document.querySelectorAll('main *')]
    .filter(e => e.getBoundingClientRect().right > doc.clientWidth + 0.5)
    .map(e => e.tagName + '.' + (e.className.baseVal ?? e.className));
  const tables = [...document.querySelectorAll('table')]
    .filter(t => t.scrollWidth > t.clientWidth + 1).length;
  const text = (svg, id) => {
    const g = svg.querySelector(`[id$="-${id}"]`);
    if (!g) return null;
    const box = g.getBoundingClientRect(), outer = svg.getBoundingClientRect();
    const inside = box.width > 0 && box.left >= outer.left - 1 && box.right <= outer.right + 1
      && box.top >= outer.top - 1 && box.bottom <= outer.bottom + 1;
    return {text: g.textContent.trim(), inside};
  };
  const apart = (a, b) => a.right <= b.left || b.right <= a.left || a.bottom <= b.top
    || b.bottom <= a.top;
  const plots = [...document.querySelectorAll('svg.plot')].map(svg => ({
    name: svg.getAttribute('aria-label'),
    legendBesideData: apart(svg.querySelector('[id$="-legend_1"]').getBoundingClientRect(),
                            svg.querySelector('[id$="-plotarea"]').getBoundingClientRect()),
    width: svg.getBoundingClientRect().width,
    title: text(svg, 'title'), x: text(svg, 'xlabel'), y: text(svg, 'ylabel'),
    legend: text(svg, 'legend_1'),
  }));
  const summary = document.querySelector('.summary').getBoundingClientRect();
  return {scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, wide, tables, plots,
          summaryBottom: summary.bottom, scripts: document.scripts.length};
}"""


def test_report_at_1300px_has_no_horizontal_overflow_and_labelled_plots(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    report, journal = _report(tmp_path)
    shots = Path(os.environ.get("MLCHAOS_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            page.screenshot(path=str(shots / "report-1300.png"), full_page=True)
            page.screenshot(path=str(shots / "report-1300-top.png"))
            m = page.evaluate(MEASURE)
        finally:
            browser.close()

    assert requests == [report.as_uri()]  # self-contained: nothing else is fetched
    assert m["scripts"] == 0
    assert m["scrollWidth"] <= WIDTH, m["wide"][:10]
    assert m["wide"] == [] and m["tables"] == 0
    names = [p["name"] for p in m["plots"]]
    assert len(names) == 4, names  # verdicts, trend, latency, sweep
    for plot in m["plots"]:
        assert 0 < plot["width"] <= WIDTH, plot
        for part in ("title", "x", "y", "legend"):
            assert plot[part] and plot[part]["text"], (plot["name"], part)
            assert plot[part]["inside"], (plot["name"], part, "drawn outside the plot")
        assert plot["legendBesideData"], (plot["name"], "legend drawn over the data")
    units = " ".join(p["x"]["text"] + " " + p["y"]["text"] for p in m["plots"])
    assert "(s)" in units and "(count)" in units and "(0-100)" in units
    # the summary a manager reads is on the first screen
    assert m["summaryBottom"] <= 900
    assert (shots / "report-1300.png").stat().st_size > 20_000
    assert journal["runs"] and "feature_pipeline" in report.read_text()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file:// page needs no network; keep a proxy from the environment out of chromium."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
