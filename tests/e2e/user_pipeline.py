"""The user's own pipeline, as the e2e tests write it: a DAG folder (``add_chaos`` on a daily
features DAG alerting through the Slack provider), a Dagster module next to the experiments file
(a blocking asset check and the team's run-failure sensor), the user's CSV data and an experiments
file. Shared by ``test_your_pipeline`` (repository venv) and ``test_wheel_install`` (the wheel in
a fresh virtualenv), so both run exactly the same user code.
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

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


@dataclass(frozen=True)
class UserProject:
    """Where :func:`write_user_project` put the user's files."""

    root: Path
    data: Path  #: source.csv (read by the pipeline), unread.csv (read by nothing)
    project: Path  #: experiments.yaml, mymod.py (Dagster) and dags/
    dags: Path  #: user_features.py (with add_chaos) and no_chaos.py (without)
    elsewhere: Path  #: an empty working directory, not the project folder

    @property
    def experiments(self) -> Path:
        return self.project / "experiments.yaml"


def experiments_text(until: str | None = None) -> str:
    """The experiments file; with ``until``, only the experiments before the one named so."""
    text = textwrap.dedent(EXPERIMENTS).lstrip()
    return text[: text.index(f"  - name: {until}")] if until else text


def write_user_project(root: Path) -> UserProject:
    """Write the user's data, DAG folder, Dagster module and experiments file under ``root``."""
    files = UserProject(
        root=root,
        data=root / "data",
        project=root / "project",
        dags=root / "project" / "dags",
        elsewhere=root / "elsewhere",
    )
    for folder in (files.data, files.dags, files.elsewhere):
        folder.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(f"{i},{10.5 + i}" for i in range(40))
    for name in ("source.csv", "unread.csv"):
        (files.data / name).write_text("id,amount\n" + rows + "\n")
    (files.dags / f"{DAG_ID}.py").write_text(USER_DAG.lstrip())
    # the same DAG without add_chaos: refused before anything runs
    plain_dag = USER_DAG.split("add_chaos(\n")[0].replace(f'"{DAG_ID}"', '"no_chaos"')
    (files.dags / "no_chaos.py").write_text(plain_dag.lstrip())
    (files.project / "mymod.py").write_text(USER_DAGSTER.lstrip())
    files.experiments.write_text(experiments_text())
    return files


def user_env(files: UserProject, home: Path, slack_url: str, alert_url: str) -> dict[str, str]:
    """This process's environment without mlchaos / Airflow / Dagster settings and PYTHONPATH,
    plus the user's: MLCHAOS_HOME and ledger under ``home``, their data allowed, their Slack
    connection (``AIRFLOW_CONN_USER_SLACK``) and their pager URL for the Dagster sensor."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLCHAOS_", "AIRFLOW", "DAGSTER_")) and k != "PYTHONPATH"
    }
    env.update(
        {
            "MLCHAOS_HOME": str(home),
            "MLCHAOS_LEDGER_URL": f"sqlite:///{home / 'ledger.db'}",
            "MLCHAOS_ALLOWED_TARGETS": str(files.root),
            "USER_DATA": str(files.data),
            "USER_ALERT_URL": alert_url,
            # the user's own Airflow connection: passes through to the private Airflow home
            "AIRFLOW_CONN_USER_SLACK": json.dumps(
                {"conn_type": "slackwebhook", "password": slack_url}
            ),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def read_report(reports: Path) -> tuple[dict[str, Any], ET.Element, str]:
    """The latest report under ``reports``: journal, JUnit root element, HTML text."""
    latest = reports / "latest"
    journal = json.loads((latest / "journal.json").read_text())
    return journal, ET.parse(latest / "junit.xml").getroot(), (latest / "report.html").read_text()


def report_title(html: str) -> str:
    """The report's ``<h1>`` text."""
    return html.split("<h1>", 1)[1].split("</h1>", 1)[0]


def run_verdicts(journal: dict[str, Any]) -> dict[tuple[str, str], str]:
    """``{(orchestrator, experiment): verdict}`` of a journal's runs."""
    return {(r["orchestrator"], r["experiment"]): r["verdict"] for r in journal["runs"]}
