"""``mlchaos suite FILE`` on a user's own pipelines, through the console script (a subprocess),
as a new user would run it: a DAG folder and a Dagster module written here (not our example),
real ``dag.test()`` and real Dagster, the user's own alert channels (the Slack provider's
notifier through an ``AIRFLOW_CONN_*`` variable; a Dagster run-failure sensor), the user's data
only (nothing of the example is prepared), and the experiments file's folder importable without
``PYTHONPATH``.

Airflow runs cost ~10-30 s each: the tests share one project (and so one private Airflow home,
migrated once) and keep the experiments few.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from mlchaos_orchestration.testing import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

MLCHAOS = str(Path(sys.executable).with_name("mlchaos"))
DS = "2026-11-20"
DAG_ID = "user_features"

USER_DAG = '''
"""The user's own daily features DAG: extract -> check -> train over a local CSV."""
import datetime as dt
import os
from pathlib import Path

from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
from airflow.sdk import DAG, get_current_context, task

from mlchaos_orchestration.airflow import add_chaos

DATA = Path(os.environ.get("USER_DATA", "/nonexistent/user-data"))

with DAG(
    "user_features",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    default_args={
        "on_failure_callback": SlackWebhookNotifier(
            slack_webhook_conn_id="user_slack", text="{{ ti.task_id }} failed"
        )
    },
) as dag:

    @task
    def extract() -> int:
        import pandas as pd

        (DATA / "ds.txt").write_text(get_current_context()["ds"])
        frame = pd.read_csv(DATA / "source.csv")
        frame.to_csv(DATA / "features.csv", index=False)
        return len(frame)

    @task
    def check() -> None:
        import pandas as pd

        nulls = int(pd.read_csv(DATA / "features.csv")["amount"].isna().sum())
        assert nulls == 0, f"{nulls} null amounts"

    @task
    def train() -> None:
        import pandas as pd

        rows = len(pd.read_csv(DATA / "features.csv"))
        (DATA / "trained.txt").write_text(f"airflow {rows}")

    extract() >> check() >> train()

add_chaos(
    dag,
    experiments_file=str(Path(__file__).resolve().parents[1] / "experiments.yaml"),
    before="extract",
    gate="check",
    consumer="train",
)
'''

USER_DAGSTER = '''
"""The user's own Dagster code: an asset writing a CSV, a blocking check reading it, a consumer,
and the team's own failure alert (a run-failure sensor posting to their webhook)."""
import json
import os
import urllib.request
from pathlib import Path

import dagster as dg
import pandas as pd

DATA = Path(os.environ.get("USER_DATA", "/nonexistent/user-data"))


@dg.asset
def extract() -> None:
    pd.read_csv(DATA / "source.csv").to_csv(DATA / "features.csv", index=False)


@dg.asset_check(asset=extract, blocking=True)
def check() -> dg.AssetCheckResult:
    nulls = int(pd.read_csv(DATA / "features.csv")["amount"].isna().sum())
    return dg.AssetCheckResult(passed=nulls == 0, metadata={"nulls": nulls})


@dg.asset(deps=[extract])
def train() -> None:
    rows = len(pd.read_csv(DATA / "features.csv"))
    (DATA / "trained.txt").write_text(f"dagster {rows}")


@dg.run_failure_sensor
def page_oncall(context: dg.RunFailureSensorContext) -> None:
    body = json.dumps({"text": f"run {context.dagster_run.run_id} failed"}).encode()
    request = urllib.request.Request(
        os.environ["USER_ALERT_URL"], data=body, headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).close()


nightly = dg.define_asset_job("nightly", selection=dg.AssetSelection.all())
defs = dg.Definitions(
    assets=[extract, train], asset_checks=[check], jobs=[nightly], sensors=[page_oncall]
)
'''

EXPERIMENTS = """
version: 1
defaults:
  seed: 11
  gate: check
  consumer: train
  safety: {ttl_s: 600, alert_deadline_s: 120}
experiments:
  - {name: control, control: true, expect: clean}
  - name: nulls-amount
    hypothesis: nulls in amount stop the run at the check
    faults:
      - {fault: nulls, columns: [amount], fraction: 0.5, target: "${USER_DATA}/features.csv",
         at: check}
    expect: caught
  - name: nulls-unread
    hypothesis: a fault on a file no task reads never reaches the pipeline
    faults:
      - {fault: nulls, columns: [amount], fraction: 0.5, target: "${USER_DATA}/unread.csv",
         at: check}
    expect: not_reached
"""


@dataclass
class Project:
    root: Path
    data: Path
    env: dict[str, str]
    slack: WebhookReceiver
    pager: WebhookReceiver

    def mlchaos(self, *args: str, timeout: float = 800) -> subprocess.CompletedProcess:
        t0 = time.monotonic()
        out = subprocess.run(
            [MLCHAOS, *args],
            cwd=self.root / "elsewhere",  # the project folder is NOT the working directory
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        print(f"mlchaos {' '.join(args[:1])}: {time.monotonic() - t0:.1f} s")
        return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("your_pipeline")
    data = root / "data"
    for folder in (data, root / "project" / "dags", root / "elsewhere"):
        folder.mkdir(parents=True)
    rows = "\n".join(f"{i},{10.5 + i}" for i in range(40))
    (data / "source.csv").write_text("id,amount\n" + rows + "\n")
    (data / "unread.csv").write_text("id,amount\n" + rows + "\n")
    (root / "project" / "dags" / "user_features.py").write_text(USER_DAG.lstrip())
    # the same DAG without add_chaos: refused before anything runs
    plain_dag = USER_DAG.split("add_chaos(\n")[0].replace('"user_features"', '"no_chaos"')
    (root / "project" / "dags" / "no_chaos.py").write_text(plain_dag.lstrip())
    (root / "project" / "mymod.py").write_text(USER_DAGSTER.lstrip())
    (root / "project" / "experiments.yaml").write_text(textwrap.dedent(EXPERIMENTS).lstrip())
    home = root / "mlchaos"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLCHAOS_", "AIRFLOW", "DAGSTER_")) and k != "PYTHONPATH"
    }
    with WebhookReceiver() as slack, WebhookReceiver() as pager:
        env.update(
            {
                "MLCHAOS_HOME": str(home),
                "MLCHAOS_LEDGER_URL": f"sqlite:///{home / 'ledger.db'}",
                "MLCHAOS_ALLOWED_TARGETS": str(root),
                "USER_DATA": str(data),
                "USER_ALERT_URL": pager.url,
                # the user's own Airflow connection: passes through to the private Airflow home
                "AIRFLOW_CONN_USER_SLACK": json.dumps(
                    {"conn_type": "slackwebhook", "password": slack.url}
                ),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        yield Project(root=root, data=data, env=env, slack=slack, pager=pager)


def _report(reports: Path) -> tuple[dict[str, Any], ET.Element, str]:
    latest = reports / "latest"
    journal = json.loads((latest / "journal.json").read_text())
    return journal, ET.parse(latest / "junit.xml").getroot(), (latest / "report.html").read_text()


def _h1(html: str) -> str:
    return html.split("<h1>", 1)[1].split("</h1>", 1)[0]


def _verdicts(journal: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["orchestrator"], r["experiment"]): r["verdict"] for r in journal["runs"]}


def _assert_user_data_only(project: Project, unread_sha: str) -> None:
    assert _sha(project.data / "unread.csv") == unread_sha  # restored byte-exactly
    home = Path(project.env["MLCHAOS_HOME"])
    assert not (home / "example").exists()  # nothing of the example was prepared
    assert not list((home / "suite").glob("*/raw"))  # nor copied per orchestrator


def test_your_airflow_dag(project: Project) -> None:
    """Unknown DAG id / a DAG without add_chaos: one line each. Then control clean, nulls
    caught (the user's Slack alert), unread file not_reached, exit 0 with --fail-on default, a
    report naming the DAG."""
    exp = project.root / "project" / "experiments.yaml"
    dags = project.root / "project" / "dags"
    unknown = project.mlchaos(
        "suite", str(exp), "--airflow-dag", "nope", "--dags-folder", str(dags)
    )
    assert unknown.returncode == 1, unknown.stderr
    lines = unknown.stderr.strip().splitlines()
    assert len(lines) == 1, unknown.stderr
    assert "no DAG 'nope'" in lines[0] and DAG_ID in lines[0], lines[0]
    no_chaos = project.mlchaos(
        "suite", str(exp), "--airflow-dag", "no_chaos", "--dags-folder", str(dags)
    )
    assert no_chaos.returncode == 1 and len(no_chaos.stderr.strip().splitlines()) == 1
    assert "DAG 'no_chaos' has no chaos tasks: call add_chaos(" in no_chaos.stderr

    unread_sha = _sha(project.data / "unread.csv")
    reports = project.root / "reports-airflow"
    out = project.mlchaos(
        "suite",
        str(exp),
        "--airflow-dag",
        DAG_ID,
        "--dags-folder",
        str(dags),
        "--ds",
        DS,
        "--fail-on",
        "default",
        "--reports-dir",
        str(reports),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    journal, junit, html = _report(reports)
    assert _verdicts(journal) == {
        ("airflow", "control"): "clean",
        ("airflow", "nulls-amount"): "caught",
        ("airflow", "nulls-unread"): "not_reached",
    }, [(r["experiment"], r["verdict"], r["reason"]) for r in journal["runs"]]
    assert {r["pipeline"] for r in journal["runs"]} == {DAG_ID}
    caught = next(r for r in journal["runs"] if r["experiment"] == "nulls-amount")
    assert caught["evidence"]["gate"]["task"] == "check"
    assert any("SlackWebhookNotifier" in line for line in caught["evidence_text"]), caught
    assert project.slack.requests, "the user's Slack connection was never called"
    assert (project.data / "ds.txt").read_text() == DS  # --ds is the run's date
    assert {c.get("classname") for c in junit.iter("testcase")} == {f"airflow.{DAG_ID}"}
    assert junit.get("tests") == "3" and junit.get("skipped") == "1"
    assert DAG_ID in _h1(html) and f"Airflow DAG {DAG_ID}" in out.stdout
    assert journal["meta"]["worker_exit_codes"] == {"airflow": 0}
    _assert_user_data_only(project, unread_sha)


def test_your_dagster_definitions(project: Project) -> None:
    """``--dagster-defs mymod:defs --job nightly`` (a module next to the experiments file, not
    wrapped by with_chaos; ``-> None`` assets): the same verdicts; a defs reference that does
    not import is one line."""
    exp = project.root / "project" / "experiments.yaml"
    bad = project.mlchaos("suite", str(exp), "--dagster-defs", "mymod:nodefs")
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no attribute 'nodefs'" in lines[0], bad.stderr

    unread_sha = _sha(project.data / "unread.csv")
    alerts_before = len(project.pager.requests)
    reports = project.root / "reports-dagster"
    out = project.mlchaos(
        "suite",
        str(exp),
        "--dagster-defs",
        "mymod:defs",
        "--job",
        "nightly",
        "--fail-on",
        "default",
        "--reports-dir",
        str(reports),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    journal, junit, html = _report(reports)
    assert _verdicts(journal) == {
        ("dagster", "control"): "clean",
        ("dagster", "nulls-amount"): "caught",
        ("dagster", "nulls-unread"): "not_reached",
    }, [(r["experiment"], r["verdict"], r["reason"]) for r in journal["runs"]]
    assert {r["pipeline"] for r in journal["runs"]} == {"mymod:defs/nightly"}
    assert len(project.pager.requests) > alerts_before  # the user's own sensor alerted
    assert (project.data / "trained.txt").read_text() == "dagster 40"  # control trained
    assert {c.get("classname") for c in junit.iter("testcase")} == {"dagster.mymod:defs/nightly"}
    assert "mymod:defs/nightly" in _h1(html) and "Dagster mymod:defs job nightly" in out.stdout
    _assert_user_data_only(project, unread_sha)


def test_targets_in_the_file_give_one_report(project: Project) -> None:
    """``targets:`` naming the DAG and the Definitions (relative DAGs folder): one suite, one
    report with both; a target flag on top of ``targets:`` is refused in one line."""
    text = textwrap.dedent(EXPERIMENTS).lstrip()
    text = text.replace(
        "experiments:\n",
        "targets:\n"
        f"  - {{airflow: {{dag_id: {DAG_ID}, dags_folder: dags}}}}\n"
        '  - {dagster: {defs: "mymod:defs"}}\n'
        "experiments:\n",
    )
    # two experiments (each Airflow run costs seconds): control + the caught fault
    text = text[: text.index("  - name: nulls-unread")]
    both = project.root / "project" / "both.yaml"
    both.write_text(text)
    refused = project.mlchaos("suite", str(both), "--dagster-defs", "mymod:defs")
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1 and "not both" in refused.stderr

    reports = project.root / "reports-both"
    out = project.mlchaos("suite", str(both), "--ds", DS, "--reports-dir", str(reports))
    assert out.returncode == 0, out.stdout + out.stderr
    journal, junit, html = _report(reports)
    assert _verdicts(journal) == {
        ("airflow", "control"): "clean",
        ("airflow", "nulls-amount"): "caught",
        ("dagster", "control"): "clean",
        ("dagster", "nulls-amount"): "caught",
    }
    assert len({r["suite_id"] for r in journal["runs"]}) == 1
    assert {r["pipeline"] for r in journal["runs"]} == {DAG_ID, "mymod:defs"}
    assert junit.get("tests") == "4"
    assert DAG_ID in _h1(html) and "mymod:defs" in _h1(html)
    # the runs went one after the other: every Dagster run started after the last Airflow run
    airflow_end = max(r["ended_at"] for r in journal["runs"] if r["orchestrator"] == "airflow")
    assert all(
        r["started_at"] > airflow_end for r in journal["runs"] if r["orchestrator"] == "dagster"
    )
