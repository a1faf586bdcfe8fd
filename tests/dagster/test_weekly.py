"""Weekly resilience in Dagster: the schedule evaluated for a tick, its run executes the file's
experiments (control included) on the chosen asset selection of a user's graph, writes the full
report (journal / JUnit / HTML, suite id) and publishes it; the resilience asset carries the
score as numeric metadata (history) with the report link; verdicts show as run tags."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import dagster as dg
import pytest

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.dagster import MlchaosResource, weekly_resilience, with_chaos

EXPERIMENTS = """\
version: 1
defaults: {gate: ids_not_null, consumer: report}
experiments:
  - name: control
    control: true
    expect: clean
  - name: ids-nulls
    faults:
      - {fault: nulls, columns: [order_id], fraction: 0.5, at: ids_not_null}
    expect: caught
  - name: amount-drift
    faults:
      - {fault: drift, columns: [amount], k: 3.0, at: ids_not_null}
    expect: silent
"""
OTHER_RUNS: list[int] = []


@dg.asset
def orders() -> Any:
    import pandas as pd

    return pd.DataFrame({"order_id": [1, 2, 3, 4, 5, 6], "amount": [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})


@dg.asset_check(asset=orders, blocking=True)
def ids_not_null(orders: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=bool(orders["order_id"].notna().all()))


@dg.asset
def report(orders: Any) -> int:
    return len(orders)


@dg.asset
def unrelated() -> None:
    OTHER_RUNS.append(1)  # not in the resilience selection: chaos runs never execute it


@pytest.fixture
def weekly(
    mlchaos_home: Path, tmp_path: Path, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[dg.Definitions, Path]:
    """The user's Definitions + chaos (configured by MlchaosResource) + weekly resilience."""
    import os

    saved = dict(os.environ)
    monkeypatch.setenv("TEAM_HOOK", webhook.url)
    exps = tmp_path / "experiments.yaml"
    exps.write_text(EXPERIMENTS)
    reports = tmp_path / "published"
    chaos = with_chaos(
        dg.Definitions(assets=[orders, report, unrelated], asset_checks=[ids_not_null]),
        resource=MlchaosResource(
            reports_location=str(reports), alert_webhook_url=dg.EnvVar("TEAM_HOOK")
        ),
    )
    resilience = weekly_resilience(
        chaos, str(exps), selection=["orders", "report"], name="orders_resilience"
    )
    OTHER_RUNS.clear()
    yield dg.Definitions.merge(chaos, resilience.defs), reports
    os.environ.clear()
    os.environ.update(saved)


def _tick(defs: dg.Definitions, instance: Any, when: dt.datetime) -> dg.ExecuteInProcessResult:
    """Evaluate the schedule for a tick (what the daemon does), then run its request."""
    schedule = defs.resolve_schedule_def("orders_resilience_weekly")
    data = schedule.evaluate_tick(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
    )
    (request,) = data.run_requests
    job = defs.resolve_job_def(schedule.job_name)
    return job.execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance
    )


def test_weekly_tick_runs_the_matrix_and_publishes_the_report(
    weekly: tuple[dg.Definitions, Path], instance: Any
) -> None:
    from mlchaos_orchestration.reporting.location import ReportsLocation

    defs, reports = weekly
    schedule = defs.resolve_schedule_def("orders_resilience_weekly")
    assert schedule.cron_schedule == "@weekly"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    result = _tick(defs, instance, dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc))
    assert result.success
    suite_id = f"dagster-{result.run_id}"

    runs = Ledger().list_runs(suite_id=suite_id)
    assert {r["experiment"]: r["verdict"] for r in runs} == {
        "control": "clean",
        "ids-nulls": "caught",
        "amount-drift": "silent",
    }
    assert OTHER_RUNS == []  # the selection held
    # the report: same kind as `mlchaos suite` writes, published to the location
    (published,) = ReportsLocation(str(reports)).list()
    assert published.suite_id == suite_id
    assert set(published.files) == {"journal.json", "junit.xml", "report.html"}
    folder = reports / published.name
    journal = json.loads((folder / "journal.json").read_text())
    assert journal["suite_id"] == suite_id and journal["resilience_score"] == 50.0
    assert journal["meta"]["ds"] == "2026-11-22"  # the day before the tick
    assert len(list(ET.parse(folder / "junit.xml").getroot().iter("testcase"))) == 3
    assert "amount-drift" in (folder / "report.html").read_text()

    # the resilience asset: numeric metadata, report link, its check
    (mat,) = result.asset_materializations_for_node(
        defs.resolve_assets_def(dg.AssetKey(["mlchaos", "orders_resilience"])).op.name
    )
    meta = mat.metadata
    assert meta["resilience_score"] == dg.MetadataValue.float(50.0)
    assert meta["verdicts/caught"] == dg.MetadataValue.int(1)
    assert meta["verdicts/silent"] == dg.MetadataValue.int(1)
    assert meta["report"] == dg.MetadataValue.path(str(folder / "report.html"))
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "verdicts_as_expected" and check.passed

    # run tags: the suite's run and each chaos run
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["mlchaos/resilience_score"] == "50.0"
    assert tags["mlchaos/report"] == str(folder / "report.html")
    for run in runs:
        (chaos_run,) = instance.get_runs(dg.RunsFilter(tags={"mlchaos/run_id": run["id"]}))
        assert chaos_run.tags["mlchaos/verdict"] == run["verdict"]
        assert chaos_run.tags["mlchaos/report"] == str(folder / "report.html")


def test_score_history_is_numeric_per_materialization(
    weekly: tuple[dg.Definitions, Path], instance: Any
) -> None:
    defs, _ = weekly
    for day in (23, 30):
        assert _tick(defs, instance, dt.datetime(2026, 11, day, tzinfo=dt.timezone.utc)).success
    key = dg.AssetKey(["mlchaos", "orders_resilience"])
    records = instance.fetch_materializations(key, limit=10).records
    scores = [r.asset_materialization.metadata["resilience_score"] for r in records]
    assert scores == [dg.MetadataValue.float(50.0)] * 2
    # each chaos run left the user's asset graph restored: the second suite saw the same verdicts
    assert {r.asset_materialization.metadata["ds"].value for r in records} == {
        "2026-11-22",
        "2026-11-29",
    }


def test_report_published_to_s3_links_the_object(
    mlchaos_home: Path, s3_client: Any, s3_bucket: str
) -> None:
    from mlchaos_orchestration.dagster.resilience import write_and_publish
    from mlchaos_orchestration.reporting.report import build_journal

    journal = build_journal(Ledger(), "dagster-x")
    folder, link = write_and_publish(journal, f"s3://{s3_bucket}/weekly")
    assert folder is None
    assert link.startswith(f"s3://{s3_bucket}/weekly/") and link.endswith("/report.html")
    key = link.removeprefix(f"s3://{s3_bucket}/")
    assert b"<html" in s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read().lower()


def test_per_minute_cron_skips_while_a_resilience_run_is_queued_or_running(
    weekly: tuple[dg.Definitions, Path], instance: Any
) -> None:
    """A tick while a resilience run of the same name is unfinished launches nothing (the skip
    says why); once that run finished, the next tick launches again."""
    defs, _ = weekly
    schedule = defs.resolve_schedule_def("orders_resilience_weekly")
    job = defs.resolve_job_def(schedule.job_name)
    when = dt.datetime(2026, 11, 23, 3, 1, tzinfo=dt.timezone.utc)

    def tick() -> Any:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
        return schedule.evaluate_tick(context)

    assert len(tick().run_requests) == 1  # nothing running: launches
    # (a QUEUED run needs a code-location origin; the same status filter covers it)
    for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTED):
        run = instance.create_run_for_job(job_def=job, status=status)
        data = tick()
        assert not data.run_requests
        assert run.run_id in data.skip_message and "queued or running" in data.skip_message
        instance.report_run_failed(run)
    assert len(tick().run_requests) == 1  # every earlier run finished: launches again
