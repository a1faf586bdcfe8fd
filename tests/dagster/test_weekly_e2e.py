"""A user's code location with chaos and weekly resilience, end to end.

* The real ``dagster-daemon`` ticks the schedule, launches the run (its own process, the step in
  a child process that re-imports the user's module) and the run writes and publishes the report.
* What the Dagster UI shows, read through its GraphQL API (the webserver's own schema) over the
  code location loaded in a separate code-server process: the MlchaosResource on the resources
  page (secrets as variable names), the resilience score on the asset, the verdict tags on the
  chaos runs and the score / report tags on the weekly run."""

from __future__ import annotations

import datetime as dt
import json
import os
import runpy
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

MODULE = """
import os

import dagster as dg
import pandas as pd

from mlchaos_orchestration.dagster import MlchaosResource, weekly_resilience, with_chaos


@dg.asset
def orders() -> pd.DataFrame:
    return pd.DataFrame({"order_id": [1, 2, 3, 4]})


@dg.asset_check(asset=orders, blocking=True)
def ids_not_null(orders: pd.DataFrame) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=bool(orders["order_id"].notna().all()))


@dg.asset
def report(orders: pd.DataFrame) -> int:
    return len(orders)


chaos = with_chaos(
    dg.Definitions(assets=[orders, report], asset_checks=[ids_not_null]),
    resource=MlchaosResource(
        ledger_url=dg.EnvVar("TEAM_LEDGER_URL"),
        reports_location=os.environ["TEAM_REPORTS"],
        environment="staging",
        alert_webhook_url=dg.EnvVar("TEAM_HOOK"),
    ),
    gate="ids_not_null",
    consumer="report",
)
defs = dg.Definitions.merge(
    chaos, weekly_resilience(
        chaos,
        os.environ["TEAM_EXPERIMENTS"],
        name="orders_resilience",
        cron_schedule=os.environ.get("TEAM_CRON", "@weekly"),
    ).defs
)
"""
EXPERIMENTS = """\
experiments:
  - name: ids-nulls
    faults:
      - {fault: nulls, columns: [order_id], fraction: 0.5, at: ids_not_null}
    expect: caught
"""
QUERY = """
query ($run: ID!, $suite: ID!, $repo: RepositorySelector!) {
  resources: allTopLevelResourceDetailsOrError(repositorySelector: $repo) {
    ... on ResourceDetailsList { results { name configuredValues { key value type } } }
  }
  asset: assetOrError(assetKey: {path: ["mlchaos", "orders_resilience"]}) {
    ... on Asset { assetMaterializations { runId metadataEntries {
      label
      ... on FloatMetadataEntry { floatValue }
      ... on PathMetadataEntry { path }
    } } }
  }
  chaos: runOrError(runId: $run) { ... on Run { tags { key value } } }
  suite: runOrError(runId: $suite) { ... on Run { tags { key value } } }
}
"""


@pytest.fixture
def user_module(
    mlchaos_home: Path, tmp_path: Path, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    saved = dict(os.environ)
    (tmp_path / "exps.yaml").write_text(EXPERIMENTS)
    monkeypatch.setenv("TEAM_EXPERIMENTS", str(tmp_path / "exps.yaml"))
    monkeypatch.setenv("TEAM_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("TEAM_LEDGER_URL", os.environ["MLCHAOS_LEDGER_URL"])
    monkeypatch.setenv("TEAM_HOOK", webhook.url)
    path = tmp_path / "team_pipeline.py"
    path.write_text(MODULE)
    yield path
    os.environ.clear()
    os.environ.update(saved)


def test_ui_shows_resource_score_history_and_verdict_tags(user_module: Path, instance: Any) -> None:
    from dagster_graphql.test.utils import (
        define_out_of_process_context,
        execute_dagster_graphql,
        infer_repository_selector,
    )

    from mlchaos_orchestration.core.ledger import Ledger

    defs: dg.Definitions = runpy.run_path(str(user_module))["defs"]
    schedule = defs.resolve_schedule_def("orders_resilience_weekly")
    tick = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    )
    (request,) = schedule.evaluate_tick(tick).run_requests
    result = defs.resolve_job_def(schedule.job_name).execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance
    )
    assert result.success
    chaos_run = next(
        r for r in Ledger().list_runs(suite_id=f"dagster-{result.run_id}") if not r["control"]
    )
    (dagster_run,) = instance.get_runs(dg.RunsFilter(tags={"mlchaos/run_id": chaos_run["id"]}))

    with define_out_of_process_context(str(user_module), "defs", instance) as context:
        data = execute_dagster_graphql(
            context,
            QUERY,
            {
                "run": dagster_run.run_id,
                "suite": result.run_id,
                "repo": infer_repository_selector(context),
            },
        ).data

    (resource,) = [r for r in data["resources"]["results"] if r["name"] == "mlchaos"]
    shown = {v["key"]: (v["type"], v["value"]) for v in resource["configuredValues"]}
    assert shown["ledger_url"] == ("ENV_VAR", "TEAM_LEDGER_URL")
    assert shown["alert_webhook_url"] == ("ENV_VAR", "TEAM_HOOK")
    assert shown["environment"] == ("VALUE", '"staging"')
    (mat,) = data["asset"]["assetMaterializations"]
    entries = {e["label"]: e for e in mat["metadataEntries"]}
    assert entries["resilience_score"]["floatValue"] == 100.0
    assert entries["report"]["path"].endswith("report.html")
    assert Path(entries["report"]["path"]).is_file()
    chaos_tags = {t["key"]: t["value"] for t in data["chaos"]["tags"]}
    assert chaos_tags["mlchaos/verdict"] == "caught"
    assert "ids_not_null" in chaos_tags["mlchaos/reason"]
    assert chaos_tags["mlchaos/report"] == entries["report"]["path"]
    suite_tags = {t["key"]: t["value"] for t in data["suite"]["tags"]}
    assert suite_tags["mlchaos/resilience_score"] == "100.0"


@pytest.mark.slow
@pytest.mark.e2e
def test_daemon_ticks_the_schedule_and_the_launched_run_publishes_the_report(
    user_module: Path, instance: Any, tmp_path: Path
) -> None:
    """Cron every minute so a tick comes within 60 s; the daemon and its code server are killed
    (process group) at the end."""
    from mlchaos_orchestration.reporting.location import ReportsLocation

    home = Path(instance.root_directory)
    (home / "dagster.yaml").write_text("")
    env = {**os.environ, "DAGSTER_HOME": str(home), "TEAM_CRON": "* * * * *"}
    daemon = Path(sys.executable).with_name("dagster-daemon")
    cmd = [str(daemon), "run", "-f", str(user_module), "-a", "defs"]
    with (tmp_path / "daemon.log").open("w") as log:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        run = _wait_for_run(instance, "orders_resilience", timeout=200)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert run is not None, (tmp_path / "daemon.log").read_text()[-3000:]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/schedule_name"] == "orders_resilience_weekly"
    (published,) = ReportsLocation(os.environ["TEAM_REPORTS"]).list()
    assert published.suite_id == f"dagster-{run.run_id}"
    assert set(published.files) == {"journal.json", "junit.xml", "report.html"}
    assert run.tags["mlchaos/report"].endswith(f"{published.name}/report.html")
    journal = json.loads(
        ReportsLocation(os.environ["TEAM_REPORTS"]).read(published.name, "journal.json")
    )
    assert {r["experiment"]: r["verdict"] for r in journal["runs"]} == {
        "control": "clean",
        "ids-nulls": "caught",
    }


def _wait_for_run(instance: Any, job: str, *, timeout: float) -> Any:
    """The first finished run of ``job`` (None after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in instance.get_runs(dg.RunsFilter(job_name=job)):
            if run.is_finished:
                return run
        time.sleep(2)
    return None
