"""``kind: drift`` game-day experiments on the real prediction API (uvicorn + Redis): parsed from
the game-day file, run as ledger runs (fault applied / detected / alert / restored events, the
verdict with its evidence), in the post-mortem, without touching the last line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.errors import SpecError
from mlchaos_orchestration.gameday.drift_game import DriftOutcome, drift_line, run_drift
from mlchaos_orchestration.gameday.plan import DriftExperiment, load_gameday
from mlchaos_orchestration.gameday.postmortem import last_line, render_html
from mlchaos_orchestration.gameday.runner import GameDayResult, Outcome
from mlchaos_orchestration.suite.receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(600)
DAYS = ["2026-11-16", "2026-11-19", "2026-11-20"]  # reference day, clean day, drift day
SEGMENT = {"columns": ["amount"], "k": 2, "segment": {"country": "IN"}, "start": "2026-11-20"}
EXAMPLE = (
    Path(__file__).resolve().parents[2] / "mlchaos_orchestration" / "examples" / "gameday.yaml"
)


def drift(name: str, **kw: Any) -> DriftExperiment:
    spec = {"name": name, "kind": "drift", "days": DAYS, "traffic_drift": SEGMENT, **kw}
    return DriftExperiment.model_validate(spec)


@pytest.fixture()
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")


def test_segment_drift_caught_with_alerts_unalerted_without(api: Any, ledger: Ledger) -> None:
    with WebhookReceiver() as hook:
        on = run_drift(drift("on", expect="caught"), api.url, ledger, webhook_url=hook.url,
                       channel="pager")  # fmt: skip
        off = run_drift(drift("off", alerts=False, expect="unalerted"), api.url, ledger,
                        webhook_url=hook.url, channel="pager")  # fmt: skip
        assert len(hook.requests) == 1  # alerts off told nobody
        assert "amount" in hook.requests[0].json["drift"]["drifted_columns"]
    assert (on.verdict, on.met, on.alert_delivered) == ("caught", True, True)
    assert (off.verdict, off.met, off.alert_delivered) == ("unalerted", True, False)
    assert on.channel == "pager" and off.channel == "alerts off: unalerted"
    assert on.drift_start_request == off.drift_start_request == 4000
    assert on.drift_start_time == "2026-11-20T00:00:00"
    # the segment is ~15% of the traffic: some hundreds of requests, hours of event time
    assert 0 < on.latency_requests <= 1000 and on.latency_event_h and on.latency_event_h > 0.5
    assert on.first_alert_request == 4000 + on.latency_requests
    assert off.latency_requests == on.latency_requests  # it would have alerted at that request
    assert "amount" in on.drifted_columns and on.false_alarms == 0

    events = {e.kind: e for e in ledger.events(on.run_id)}
    assert {"fault_applied", "alert_sent", "drift_detected", "restored"} <= set(events)
    applied, detected = events["fault_applied"], events["drift_detected"]
    assert applied.data["fault"] == "traffic_drift" and applied.data["drift_start_request"] == 4000
    assert detected.data["request"] == on.first_alert_request and detected.ts >= applied.ts
    assert events["alert_sent"].data["channel"] == "pager"
    run = ledger.get_run(on.run_id)
    assert run["orchestrator"] == "gameday" and run["verdict"] == "caught"
    evidence = run["verdict_detail"]["evidence"]
    assert evidence["latency_requests"] == on.latency_requests
    assert evidence["latency_event_h"] == on.latency_event_h and evidence["channel"] == "pager"
    assert evidence["first_alert_time"] == on.first_alert_time
    kinds = [e.kind for e in ledger.events(off.run_id)]
    assert "drift_detected" in kinds and not {"alert_sent", "alert_failed"} & set(kinds)
    assert ledger.get_run(off.run_id)["verdict"] == "unalerted"


def test_a_failed_alert_is_unalerted_and_a_faint_drift_silent(api: Any, ledger: Ledger) -> None:
    nowhere = "http://127.0.0.1:9/hook"  # nothing listens: the delivery fails
    failed = run_drift(drift("dead-hook"), api.url, ledger, webhook_url=nowhere, channel="x")
    assert failed.verdict == "unalerted" and "alert failed" in failed.reason
    assert "alert_failed" in [e.kind for e in ledger.events(failed.run_id)]
    faint = {"columns": ["amount"], "k": 0.01, "fraction": 0.01, "start": "2026-11-20"}
    silent = run_drift(drift("faint", traffic_drift=faint), api.url, ledger, webhook_url=None,
                       channel="x")  # fmt: skip
    assert silent.verdict == "silent" and silent.latency_requests is None
    assert silent.checks == 11 and "never detected in 2000 requests" in silent.reason


def test_feedback_skew_is_detected_on_the_feedback_labels(ledger: Ledger) -> None:
    skew = {"column": "country", "groups": ["IN"], "start": "2026-11-20"}
    exp = DriftExperiment.model_validate(
        {"name": "fb", "kind": "drift", "days": DAYS, "feedback_skew": skew, "alerts": False}
    )
    out = run_drift(exp, "http://unused", ledger, webhook_url=None, channel="x")
    assert out.verdict == "unalerted" and out.drifted_columns == ["country"]
    assert out.requests < 6000  # the group's feedback after the start never came back
    assert 0 < out.latency_requests <= 2000
    applied = next(e for e in ledger.events(out.run_id) if e.kind == "fault_applied")
    assert applied.data["targets"] == ["feedback://labels"]


def test_a_drift_inside_the_reference_is_an_error_run(ledger: Ledger) -> None:
    early = {**SEGMENT, "start": "2026-11-16T12:00:00"}  # inside the first 2000 requests
    out = run_drift(drift("early", traffic_drift=early), "http://127.0.0.1:9", ledger,
                    webhook_url=None, channel="x")  # fmt: skip
    assert out.verdict == "error" and "inside the reference" in out.reason
    run = ledger.get_run(out.run_id)
    assert run["verdict"] == "error" and run["status"] == "finished"
    assert [e.kind for e in ledger.events(out.run_id)] == ["error"]  # no fault was applied


def test_drift_experiments_parse_and_bad_ones_are_listed(tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["experiments"] = [
        {"name": "ok", "kind": "drift", "traffic_drift": SEGMENT, "alerts": "off"},
        {"name": "both", "kind": "drift", "traffic_drift": SEGMENT, "feedback_skew": {}},
        {"name": "nostart", "kind": "drift", "feedback_skew": {"column": "c", "groups": "x"}},
        {"name": "badk", "kind": "drift", "traffic_drift": {**SEGMENT, "k": 0}},
        {"name": "serving", "method": [{"action": "teleport"}]},
    ]
    path = tmp_path / "gd.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as err:
        load_gameday(path)
    problems = err.value.problems
    assert problems[0] == "experiments.1: give exactly one of traffic_drift or feedback_skew"
    assert "experiments.2: feedback_skew: give start" in problems[1]
    assert problems[2] == "experiments.3: traffic_drift.k: Value error, k must not be 0"
    assert problems[3].startswith("experiments.4.method.0: ")  # no kind tag in the path
    raw["experiments"] = raw["experiments"][:1]
    path.write_text(yaml.safe_dump(raw))
    (ok,) = load_gameday(path).experiments
    assert isinstance(ok, DriftExperiment) and ok.alerts is False and ok.monitor.window == 2000


def test_postmortem_has_a_drift_section_and_the_last_line_is_unchanged() -> None:
    caught = DriftOutcome(
        "seg", "traffic_drift", {"k": 2.0, "segment": {"country": "IN"}}, True, "pager",
        "caught", "detected", "r1", "caught", True, 4000, "2026-11-20T00:00:00", 4600,
        "2026-11-20T07:18:00", 600, 7.3, 1.2, ["amount"], True, 6000, 11, 0,
    )  # fmt: skip
    served = Outcome(
        "a", True, "held", "ok", "r0", 40.0, 100.0, 100.0, None, None, {"fired": False}, [], [],
        [], load=[{"action": "load#0", "rate": 150.0, "samples": []}],
    )  # fmt: skip
    result = GameDayResult(100.0, [], 200.0, "metrics", [served], 1_800_000_000.0, 12.0, [caught])
    without = GameDayResult(100.0, [], 200.0, "metrics", [served], 1_800_000_000.0, 12.0)
    assert last_line(result) == last_line(without)  # drift results are not in the last line
    assert last_line(result).startswith("gameday: held p99=40 ms at 100 rps")
    html = render_html(result)
    assert "<h2>Drift monitor</h2>" in html
    assert "600 requests, 7.3 h event time" in html and "pager" in html
    assert drift_line(caught) == "drift seg: caught — detected"
    drift_only = GameDayResult(0.0, [], 200.0, "metrics", [], 1_800_000_000.0, 12.0, [caught])
    assert last_line(drift_only) == "gameday: drift caught"


def test_a_drift_only_game_day_runs_without_load_or_peak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlchaos_orchestration.gameday.runner import run_gameday

    monkeypatch.delenv("MLCHAOS_ALERT_WEBHOOK_URL", raising=False)

    raw = yaml.safe_load(EXAMPLE.read_text())
    two_days = ["2026-11-16", "2026-11-20"]
    raw["experiments"] = [
        {"name": "seg", "kind": "drift", "days": two_days, "traffic_drift": SEGMENT},
        {"name": "fb", "kind": "drift", "days": two_days, "alerts": False,
         "monitor": {"window": 1000},  # ~1700 feedback records follow the start
         "feedback_skew": {"column": "country", "groups": ["IN"], "start": "2026-11-20"}},
    ]  # fmt: skip
    path = tmp_path / "gd.yaml"
    path.write_text(yaml.safe_dump(raw))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    result = run_gameday(load_gameday(path), tmp_path / "work", use_prometheus=False, ledger=ledger)
    assert result.peak_rps == 0.0 and result.peak_steps == [] and result.outcomes == []
    assert [(d.name, d.verdict, d.unit) for d in result.drift] == [
        ("seg", "caught", "requests"), ("fb", "unalerted", "feedback records")
    ]  # fmt: skip
    assert result.drift[0].channel.startswith("local webhook receiver")  # no webhook configured
    assert last_line(result) == "gameday: drift caught/unalerted"
    assert {r["experiment"]: r["verdict"] for r in ledger.list_runs()} == {
        "seg": "caught", "fb": "unalerted"
    }  # fmt: skip
