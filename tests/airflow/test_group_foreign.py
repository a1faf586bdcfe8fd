"""add_chaos on DAGs the project did not write: Airflow's own ``tutorial_taskflow_api`` (loaded
unmodified from the installed package) and a user DAG with its own failure callback."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

USER_TASKS = ("extract", "transform", "load")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def feed(scenario: Any) -> Path:
    """A CSV standing in for the tutorial's orders feed (what the data fault changes)."""
    path = scenario.home / "orders.csv"
    rows = "\n".join(f"{1000 + i},{100.5 + i}" for i in range(50))
    path.write_text("order_id,amount\n" + rows + "\n")
    scenario.env["MLCHAOS_TUTORIAL_FEED"] = str(path)
    return path


def test_tutorial_dormant_matches_unmodified_dag(scenario: Any, feed: Path) -> None:
    plain = scenario.run("tutorial_taskflow_api")
    chaos = scenario.run("tutorial_taskflow_api_chaos")
    assert {t: chaos["tasks"][t] for t in USER_TASKS} == {t: plain["tasks"][t] for t in USER_TASKS}
    assert {t: chaos["xcoms"].get(t) for t in USER_TASKS} == {
        t: plain["xcoms"].get(t) for t in USER_TASKS
    }
    assert plain["tasks"]["transform"] == "success"
    assert chaos["state"] == "success"
    assert chaos["tasks"]["mlchaos_teardown.restore"] == "skipped"
    assert scenario.ledger().list_runs() == []


def test_tutorial_runs_a_fault_when_asked(scenario: Any, feed: Path) -> None:
    before = _sha(feed)
    outcome = scenario.run("tutorial_taskflow_api_chaos", {"mlchaos": {}})
    name = "tutorial_taskflow_api_chaos.nulls"
    events = scenario.events(outcome, name)
    applied = next(e for e in events if e.kind == "fault_applied")
    assert applied.data["details"]["rows_changed"] == 25
    verdict = scenario.verdict(outcome, name)
    # the tutorial never reads the feed: the fault was applied but reached nothing
    assert verdict["verdict"] == "not_reached", verdict
    assert verdict["evidence"]["reads"] == [] and "no task read" in verdict["reason"]
    assert all(outcome["tasks"][t] == "success" for t in USER_TASKS)
    assert outcome["tasks"]["mlchaos_teardown.verdict"] == "success"  # not_reached: reported
    assert _sha(feed) == before


def test_user_failure_callback_and_alert_both_fire(scenario: Any, webhook: Any) -> None:
    feed = scenario.home / "feed.txt"
    feed.write_text("a\nb\nc\n")
    marker = scenario.home / "callback.txt"
    scenario.env.update(CALLBACK_FEED=str(feed), CALLBACK_MARKER=str(marker))
    outcome = scenario.run("callback_dag", {"mlchaos": {"enabled": True}})
    assert outcome["tasks"]["read_feed"] == "failed"
    assert outcome["tasks"]["train"] == "upstream_failed"
    assert marker.read_text().split() == ["read_feed"]  # the user's own callback still runs
    assert [r.json["source"] for r in webhook.wait_for(1)] == ["read_feed"]
    verdict = scenario.verdict(outcome, "callback_dag.upstream_outage")
    assert verdict["verdict"] == "caught" and verdict["halted_by"] == "read_feed"
    assert feed.read_text() == "a\nb\nc\n"
