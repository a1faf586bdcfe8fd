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
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from user_pipeline import (
    DAG_ID,
    experiments_text,
    read_report,
    report_title,
    run_verdicts,
    user_env,
    write_user_project,
)

from mlchaos_orchestration.testing import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

MLCHAOS = str(Path(sys.executable).with_name("mlchaos"))
DS = "2026-11-20"


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
    files = write_user_project(root)
    with WebhookReceiver() as slack, WebhookReceiver() as pager:
        env = user_env(files, root / "mlchaos", slack.url, pager.url)
        yield Project(root=root, data=files.data, env=env, slack=slack, pager=pager)


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
    journal, junit, html = read_report(reports)
    assert run_verdicts(journal) == {
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
    assert DAG_ID in report_title(html) and f"Airflow DAG {DAG_ID}" in out.stdout
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
    journal, junit, html = read_report(reports)
    assert run_verdicts(journal) == {
        ("dagster", "control"): "clean",
        ("dagster", "nulls-amount"): "caught",
        ("dagster", "nulls-unread"): "not_reached",
    }, [(r["experiment"], r["verdict"], r["reason"]) for r in journal["runs"]]
    assert {r["pipeline"] for r in journal["runs"]} == {"mymod:defs/nightly"}
    assert len(project.pager.requests) > alerts_before  # the user's own sensor alerted
    assert (project.data / "trained.txt").read_text() == "dagster 40"  # control trained
    assert {c.get("classname") for c in junit.iter("testcase")} == {"dagster.mymod:defs/nightly"}
    assert (
        "mymod:defs/nightly" in report_title(html)
        and "Dagster mymod:defs job nightly" in out.stdout
    )
    _assert_user_data_only(project, unread_sha)


def test_targets_in_the_file_give_one_report(project: Project) -> None:
    """``targets:`` naming the DAG and the Definitions (relative DAGs folder): one suite, one
    report with both; a target flag on top of ``targets:`` is refused in one line."""
    # two experiments (each Airflow run costs seconds): control + the caught fault
    text = experiments_text(until="nulls-unread").replace(
        "experiments:\n",
        "targets:\n"
        f"  - {{airflow: {{dag_id: {DAG_ID}, dags_folder: dags}}}}\n"
        '  - {dagster: {defs: "mymod:defs"}}\n'
        "experiments:\n",
    )
    both = project.root / "project" / "both.yaml"
    both.write_text(text)
    refused = project.mlchaos("suite", str(both), "--dagster-defs", "mymod:defs")
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1 and "not both" in refused.stderr

    reports = project.root / "reports-both"
    out = project.mlchaos("suite", str(both), "--ds", DS, "--reports-dir", str(reports))
    assert out.returncode == 0, out.stdout + out.stderr
    journal, junit, html = read_report(reports)
    assert run_verdicts(journal) == {
        ("airflow", "control"): "clean",
        ("airflow", "nulls-amount"): "caught",
        ("dagster", "control"): "clean",
        ("dagster", "nulls-amount"): "caught",
    }
    assert len({r["suite_id"] for r in journal["runs"]}) == 1
    assert {r["pipeline"] for r in journal["runs"]} == {DAG_ID, "mymod:defs"}
    assert junit.get("tests") == "4"
    assert DAG_ID in report_title(html) and "mymod:defs" in report_title(html)
    # the runs went one after the other: every Dagster run started after the last Airflow run
    airflow_end = max(r["ended_at"] for r in journal["runs"] if r["orchestrator"] == "airflow")
    assert all(
        r["started_at"] > airflow_end for r in journal["runs"] if r["orchestrator"] == "dagster"
    )
