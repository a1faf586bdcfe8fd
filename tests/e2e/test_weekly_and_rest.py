"""The user's own DAG (not our example) under a real Airflow (api-server + scheduler +
dag-processor, LocalExecutor, loopback): the weekly resilience DAG made by ``resilience_dag``
runs to completion and publishes its report to the reports location, which the Resilience view
lists; ``mlchaos suite --airflow-url`` tests the same DAG through the REST API.

One Airflow for the module (it takes ~1 min to start on 2 cores); its DAGs folder is the user's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from conftest import AirflowStack, make_stack
from user_pipeline import DAG_ID, UserProject, experiments_text, write_user_project

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.reporting.location import ReportsLocation
from mlchaos_orchestration.testing.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

MLCHAOS = str(Path(sys.executable).with_name("mlchaos"))
WEEKLY = f"mlchaos_resilience__{DAG_ID}"
WEEKLY_DAG_FILE = '''
"""The user's weekly resilience check of their features DAG."""
from pathlib import Path

from mlchaos_orchestration.airflow.resilience import resilience_dag

dag = resilience_dag(
    target_dag_id="user_features",
    experiments_file=Path(__file__).resolve().parents[1] / "experiments.yaml",
    schedule="@weekly",
    poke_interval=2,
)
'''
EXPECTED = {"control": "clean", "nulls-amount": "caught", "nulls-unread": "not_reached"}


@dataclass
class Deployment:
    stack: AirflowStack
    files: UserProject
    location: ReportsLocation


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, webhook_module: Any
) -> Iterator[Deployment]:
    """The user's DAG folder (their features DAG + a weekly DAG from the factory) served by a
    running Airflow whose reports location is a local folder."""
    root = tmp_path_factory.mktemp("weekly_rest")
    files = write_user_project(root / "user")
    (files.dags / "weekly.py").write_text(WEEKLY_DAG_FILE.lstrip())
    stack = make_stack(root / "stack", webhook_module.url)
    location = root / "published"
    stack.env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(files.dags),
            "MLCHAOS_ALLOWED_TARGETS": str(root),
            "MLCHAOS_REPORTS_LOCATION": str(location),
            "USER_DATA": str(files.data),
            "AIRFLOW_CONN_USER_SLACK": json.dumps(
                {"conn_type": "slackwebhook", "password": webhook_module.url}
            ),
        }
    )
    t0 = time.monotonic()
    try:
        stack.start()
        stack.wait_dag(DAG_ID, timeout_s=120)
        stack.wait_dag(WEEKLY, timeout_s=60)
        stack.timings["dags_loaded_s"] = time.monotonic() - t0
        yield Deployment(stack, files, ReportsLocation(str(location)))
    finally:
        stack.stop()
        print("\ne2e timings (s):", {k: round(v, 1) for k, v in stack.timings.items()})


def _verdicts(journal: dict[str, Any]) -> dict[str, str]:
    return {r["experiment"]: r["verdict"] for r in journal["runs"]}


def test_weekly_dag_runs_and_publishes_its_report(deployment: Deployment) -> None:
    stack = deployment.stack
    t0 = time.monotonic()
    resp = stack.api("POST", f"/api/v2/dags/{WEEKLY}/dagRuns", json={"logical_date": None})
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dag_run_id"]
    run = stack.wait_run(WEEKLY, run_id, timeout_s=900)
    stack.timings["weekly_run_s"] = time.monotonic() - t0
    tasks = stack.task_states(WEEKLY, run_id)
    assert run["state"] == "success", tasks
    assert tasks == {
        "run_control": "success",
        "run_nulls_amount": "success",
        "run_nulls_unread": "success",
        "report": "success",
    }
    # the target runs were real runs of the user's DAG, named after the weekly run
    caught = stack.task_states(DAG_ID, f"mlchaos_weekly__nulls-amount__{run_id}")
    assert caught["check"] == "failed" and caught["train"] == "upstream_failed", caught

    [published] = deployment.location.list()
    journal = json.loads(deployment.location.read(published.name, "journal.json"))
    assert _verdicts(journal) == EXPECTED, [(r["experiment"], r["reason"]) for r in journal["runs"]]
    assert published.summary["verdicts"] == {"clean": 1, "caught": 1, "not_reached": 1}
    assert published.target == DAG_ID and journal["suite_id"] == published.suite_id
    assert journal["meta"]["weekly"] == {"dag_id": WEEKLY, "run_id": run_id}
    ledger = Ledger(stack.env["MLCHAOS_LEDGER_URL"])
    assert {r["experiment"] for r in ledger.list_runs(suite_id=published.suite_id)} == set(EXPECTED)
    junit = ET.fromstring(deployment.location.read(published.name, "junit.xml"))
    assert junit.get("tests") == "3" and junit.get("failures") == "0"
    html = deployment.location.read(published.name, "report.html").decode()
    assert DAG_ID in html and published.suite_id in html
    assert not ledger.live_leases()
    _assert_view_lists(stack, published.name, published.suite_id)


def _assert_view_lists(stack: AirflowStack, name: str, suite_id: str) -> None:
    """The Resilience view (behind Airflow's auth) links the published report and serves it."""
    url = f"{stack.base_url}/mlchaos"
    auth = {"Authorization": f"Bearer {stack.token()}"}
    link = f"reports/{name}/report.html"
    with httpx.Client(timeout=60, trust_env=False) as http:
        page = http.get(f"{url}/", headers=auth)
        assert page.status_code == 200 and f'href="{link}"' in page.text, page.text[-3000:]
        assert http.get(f"{url}/{link}").status_code == 401
        report = http.get(f"{url}/{link}", headers=auth)
        assert report.status_code == 200 and suite_id in report.text


def _mlchaos(
    deployment: Deployment, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The console script as a CI job next to the deployment would run it: the deployment's
    ledger and reports location, none of its Airflow settings."""
    env = {k: v for k, v in deployment.stack.env.items() if not k.startswith("AIRFLOW")}
    t0 = time.monotonic()
    out = subprocess.run(
        [MLCHAOS, "suite", *args],
        cwd=deployment.files.elsewhere,
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(f"mlchaos suite {' '.join(args[1:5])}: {time.monotonic() - t0:.1f} s")
    return out


def _one_line(out: subprocess.CompletedProcess, expected: str) -> None:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1, out.stdout + out.stderr
    assert expected in lines[0], lines[0]


def test_suite_through_the_rest_api(deployment: Deployment) -> None:
    stack = deployment.stack
    rest = deployment.files.project / "rest.yaml"  # control + nulls-amount
    rest.write_text(experiments_text(until="nulls-unread"))
    login = ["--airflow-user", "admin", "--airflow-password", stack.admin_password()]
    base = [str(rest), "--airflow-dag", DAG_ID, "--airflow-url", stack.base_url]

    down = f"http://127.0.0.1:{free_port()}"
    _one_line(
        _mlchaos(deployment, str(rest), "--airflow-dag", DAG_ID, "--airflow-url", down, *login),
        f"--airflow-url {down}: cannot reach Airflow",
    )
    _one_line(
        _mlchaos(deployment, *base, "--airflow-user", "admin", "--airflow-password", "wrong"),
        "login refused (401): wrong user or password",
    )
    _one_line(
        _mlchaos(deployment, *base, extra_env={"MLCHAOS_AIRFLOW_TOKEN": "not-a-jwt"}),
        "GET /dags/user_features: 403 (token invalid or not allowed)",
    )
    unknown = [str(rest), "--airflow-dag", "nope", "--airflow-url", stack.base_url, *login]
    _one_line(_mlchaos(deployment, *unknown), "--airflow-dag 'nope': no such DAG at")
    no_chaos = [str(rest), "--airflow-dag", "no_chaos", "--airflow-url", stack.base_url, *login]
    _one_line(_mlchaos(deployment, *no_chaos), "DAG 'no_chaos' at ")

    reports = deployment.files.root / "reports-rest"
    before = {r.name for r in deployment.location.list()}
    t0 = time.monotonic()
    out = _mlchaos(deployment, *base, *login, "--ds", "2026-11-21", "--reports-dir", str(reports))
    stack.timings["rest_suite_s"] = time.monotonic() - t0
    assert out.returncode == 0, out.stdout + out.stderr
    journal = json.loads((reports / "latest" / "journal.json").read_text())
    assert _verdicts(journal) == {"control": "clean", "nulls-amount": "caught"}, journal["runs"]
    assert {r["pipeline"] for r in journal["runs"]} == {DAG_ID}
    assert f"Airflow DAG {DAG_ID} at {stack.base_url}" in out.stdout
    # the runs happened in the deployment, dated --ds, named after the suite
    suite_id = journal["suite_id"]
    runs = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()
    ours = {r["dag_run_id"]: r for r in runs["dag_runs"] if suite_id in r["dag_run_id"]}
    assert set(ours) == {f"mlchaos_suite__{n}__{suite_id}" for n in ("control", "nulls-amount")}
    assert {r["logical_date"][:10] for r in ours.values()} == {"2026-11-21"}
    assert {r["state"] for r in ours.values()} == {"success", "failed"}
    # and the report went to the reports location too
    [new] = [r for r in deployment.location.list() if r.name not in before]
    assert new.suite_id == suite_id and f"published: {deployment.location.url}" in out.stdout


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"airflow_url": "http://h:8080"}, "--airflow-url needs --airflow-dag DAG_ID"),
        ({"airflow_dag": "d", "airflow_url": "ftp://h"}, "not an http(s) URL"),
        ({"airflow_dag": "d", "airflow_url": "http://h", "dags_folder": "/"}, "no --dags-folder"),
    ],
)
def test_airflow_url_flag_combinations(tmp_path: Path, kwargs: dict, message: str) -> None:
    """No Airflow needed: what ``--airflow-url`` accepts, in one line."""
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.errors import MlchaosError
    from mlchaos_orchestration.suite.user_targets import resolve_targets

    spec = load_experiments({"version": 1, "experiments": [{"name": "c", "control": True}]})
    with pytest.raises(MlchaosError, match=re.escape(message)):
        resolve_targets(tmp_path / "exp.yaml", spec, **kwargs)
    [target] = resolve_targets(
        tmp_path / "exp.yaml", spec, airflow_dag="d", airflow_url="https://af.example/base/"
    )
    assert (target.kind, target.ref, target.dags_folder) == ("airflow", "d", None)
    assert target.describe() == "Airflow DAG d at https://af.example/base"
