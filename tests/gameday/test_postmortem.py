"""The post-mortem is derived from the data: timeline, impact, action items, labelled plots."""

from __future__ import annotations

from pathlib import Path

from mlchaos_orchestration.gameday.postmortem import action_items, last_line, render_html, timeline
from mlchaos_orchestration.gameday.runner import GameDayResult, Outcome

CHROMIUM = Path("/usr/bin/chromium")


def outcome(**kw: object) -> Outcome:
    t = 1_800_000_000.0
    samples = []
    for i, (phase, p99) in enumerate([("before", 40.0), ("method", 840.0), ("method", 900.0),
                                      ("after", 60.0)]):  # fmt: skip
        samples.append({"t": t + i, "probe": "p99_latency", "value": p99,
                        "ok": p99 <= 200, "source": "metrics", "phase": phase})  # fmt: skip
        samples.append({"t": t + i, "probe": "fallback_ratio", "value": 0.0,
                        "ok": None, "source": "metrics", "phase": phase})  # fmt: skip
    base = dict(
        name="redis-latency-unmitigated", mitigation=False, verdict="breached",
        reason="p99_latency = 840 outside its tolerance", run_id="r1", p99_ms=900.0, rps=150.0,
        target_rps=150.0, fallback_ratio=None, error_ratio=None,
        kill_switch={"fired": True, "delay_s": 0.4, "consecutive": 2, "probe": "p99_latency"},
        windows=[{"action": "network#1", "start": 1.0, "end": 2.5}],
        timeline=[{"t": t + 1, "what": "action_started", "action": "network#1", "latency_ms": 100},
                  {"t": t + 2.4, "what": "kill_switch", "probe": "p99_latency", "value": 900}],
        samples=samples,
        load=[{"action": "load#0", "rate": 150, "samples": [{"requests": 150, "failures": 0}] * 4}],
    )  # fmt: skip
    base.update(kw)
    return Outcome(**base)  # type: ignore[arg-type]


def test_action_items_cite_the_measured_figures() -> None:
    items = action_items(outcome(), 200)
    assert any("no circuit breaker" in i and "900 ms" in i for i in items)
    assert any("kill switch" in i and "0.40 s" in i for i in items)


def test_timeline_names_first_breach_and_recovery() -> None:
    lines = [text for _, text in timeline(outcome(), 200)]
    assert any(x.startswith("first breach: p99_latency = 840") for x in lines)
    assert "back to steady state" in lines
    assert lines.index("kill switch fired: p99_latency = 900") > lines.index(
        "first breach: p99_latency = 840"
    )


def test_html_has_summary_plot_with_labelled_axes_and_last_line() -> None:
    result = GameDayResult(100.0, [], 200.0, "metrics", [outcome()], 1_800_000_000.0, 60.0)
    html = render_html(result)
    assert "Game day post-mortem" in html and "<script" not in html
    assert "p99 latency (ms)" in html and "seconds since the method began" in html
    assert "SLO 200 ms" in html and "fault window" in html
    assert last_line(result) == (
        "gameday: breached p99=900 ms at 150 rps (150% of peak 100); kill switch fired"
    )


def test_postmortem_fits_1300px_in_a_real_browser(tmp_path: Path) -> None:
    """Debian's chromium (installed by make test's bootstrap): no horizontal overflow, no
    scripts, one plot per experiment with its axis labels; the screenshot stays in tmp_path."""
    from playwright.sync_api import sync_playwright

    from mlchaos_orchestration.gameday.postmortem import write_postmortem

    assert CHROMIUM.exists(), "chromium missing: scripts/bootstrap.sh --with-browser"
    two = [outcome(), outcome(name="redis-latency-mitigated", mitigation=True,
                              verdict="degraded_gracefully", fallback_ratio=0.4)]  # fmt: skip
    html = write_postmortem(
        GameDayResult(100.0, [], 200.0, "prometheus", two, 1.8e9, 60.0), tmp_path
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(html.as_uri())
            page.screenshot(path=str(tmp_path / "postmortem-1300.png"), full_page=True)
            m = page.evaluate(
                "() => ({w: document.documentElement.scrollWidth,"
                " scripts: document.scripts.length,"
                " svgs: [...document.querySelectorAll('svg.plot')].map(s => s.textContent)})"
            )
        finally:
            browser.close()
    assert m["w"] <= 1300 and m["scripts"] == 0
    assert len(m["svgs"]) == 2
    assert all("p99 latency (ms)" in t and "% of requests" in t for t in m["svgs"])
