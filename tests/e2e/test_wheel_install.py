"""The built wheel, installed into fresh virtualenvs outside the repository, used as a user would.

Runs only through ``make install-check`` (``scripts/install_check.sh`` builds the wheel, makes
the venvs and sets ``MLCHAOS_WHEEL_VENV`` / ``MLCHAOS_LOWEST_VENV``); skipped otherwise.

- ``mlchaos demo`` in an empty folder writes a report with verdicts (everything it needs is in the
  wheel);
- the user's own DAG folder and Dagster module (:mod:`user_pipeline`, the files
  ``test_your_pipeline`` uses) through ``mlchaos suite FILE --airflow-dag`` / ``--dagster-defs``
  give the expected verdicts and a report;
- in a deployment at the lowest Airflow and Dagster the extras declare, the wheel left both in
  place: the user's ``add_chaos`` DAG parses and a fault run is caught; the user's Dagster module
  gives the same verdicts as on the pinned stack.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from user_pipeline import (
    DAG_ID,
    UserProject,
    experiments_text,
    read_report,
    run_verdicts,
    user_env,
    write_user_project,
)

from mlchaos_orchestration.testing import WebhookReceiver

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(
        not os.environ.get("MLCHAOS_WHEEL_VENV"), reason="runs through `make install-check`"
    ),
]

EXPECTED = {"control": "clean", "nulls-amount": "caught", "nulls-unread": "not_reached"}


def _venv(variable: str) -> Path:
    venv = Path(os.environ.get(variable, ""))
    assert (venv / "bin" / "mlchaos").exists(), f"{variable}={venv} holds no installed mlchaos"
    return venv


def _run(
    venv: Path, args: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    out = subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    took = time.monotonic() - t0
    print(f"{venv.name}: {' '.join(args[:2])}: {took:.1f} s (exit {out.returncode})")
    return out


def _installed_from(venv: Path, env: dict[str, str]) -> str:
    out = _run(
        venv, ["python", "-c", "import mlchaos_orchestration as m; print(m.__file__)"], venv, env
    )
    return out.stdout.strip()


@dataclass
class User:
    """The user's files, environment and alert receivers (their Slack, their pager)."""

    files: UserProject
    env: dict[str, str]
    slack: WebhookReceiver
    pager: WebhookReceiver

    def env_for(self, venv: Path) -> dict[str, str]:
        """The environment with an MLCHAOS_HOME (ledger, private Airflow home) per venv: an
        Airflow metadata DB migrated by one Airflow version is not another's."""
        home = self.files.root / f"mlchaos-{venv.name}"
        return {
            **self.env,
            "MLCHAOS_HOME": str(home),
            "MLCHAOS_LEDGER_URL": f"sqlite:///{home / 'ledger.db'}",
        }

    def suite(self, venv: Path, *target: str, file: Path | None = None) -> dict[str, Any]:
        """``mlchaos suite FILE TARGET...`` from an unrelated folder; its report's journal."""
        reports = self.files.root / f"reports-{venv.name}-{target[0].strip('-')}"
        args = ["mlchaos", "suite", str(file or self.files.experiments), *target]
        args += ["--fail-on", "default", "--reports-dir", str(reports)]
        out = _run(venv, args, self.files.elsewhere, self.env_for(venv))
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        journal, junit, html = read_report(reports)
        assert int(junit.get("tests")) == len(journal["runs"]) and "<h1>" in html
        return journal


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    files = write_user_project(tmp_path_factory.mktemp("wheel_user"))
    with WebhookReceiver() as slack, WebhookReceiver() as pager:
        env = user_env(files, files.root / "mlchaos", slack.url, pager.url)
        yield User(files=files, env=env, slack=slack, pager=pager)


def test_the_package_comes_from_the_venv_not_the_repository(user: User) -> None:
    for variable in ("MLCHAOS_WHEEL_VENV", "MLCHAOS_LOWEST_VENV"):
        venv = _venv(variable)
        code = "import mlchaos_orchestration as m; print(m.__file__)"
        where = _run(venv, ["python", "-c", code], user.files.elsewhere, user.env).stdout
        assert where.strip().startswith(str(venv / "lib")), (variable, where)


def test_demo_in_an_empty_folder(tmp_path: Path, user: User) -> None:
    """``mlchaos demo`` with nothing but the wheel: a report with every example experiment on
    both orchestrators, clean control runs, caught faults, no errors."""
    venv = _venv("MLCHAOS_WHEEL_VENV")
    env = {k: v for k, v in user.env.items() if not k.startswith("MLCHAOS_")}
    out = _run(venv, ["mlchaos", "demo"], tmp_path, env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    journal, junit, html = read_report(tmp_path / "reports")
    verdicts = run_verdicts(journal)
    assert {orch for orch, _ in verdicts} == {"airflow", "dagster"}, verdicts
    assert verdicts[("airflow", "control")] == verdicts[("dagster", "control")] == "clean"
    assert "caught" in verdicts.values() and "error" not in verdicts.values(), verdicts
    assert int(junit.get("tests")) == len(journal["runs"]) > 10
    assert "resilience score: None" not in out.stdout and "<h1>" in html


def test_user_airflow_dag(user: User) -> None:
    venv = _venv("MLCHAOS_WHEEL_VENV")
    journal = user.suite(venv, "--airflow-dag", DAG_ID, "--dags-folder", str(user.files.dags))
    assert run_verdicts(journal) == {("airflow", k): v for k, v in EXPECTED.items()}
    assert {r["pipeline"] for r in journal["runs"]} == {DAG_ID}
    assert user.slack.requests, "the user's Slack connection was never called"


def test_user_dagster_module(user: User) -> None:
    venv = _venv("MLCHAOS_WHEEL_VENV")
    alerts_before = len(user.pager.requests)
    journal = user.suite(venv, "--dagster-defs", "mymod:defs", "--job", "nightly")
    assert run_verdicts(journal) == {("dagster", k): v for k, v in EXPECTED.items()}
    assert {r["pipeline"] for r in journal["runs"]} == {"mymod:defs/nightly"}
    assert len(user.pager.requests) > alerts_before  # the user's own sensor alerted


def _version(venv: Path, user: User, package: str) -> str:
    probe = f"from importlib.metadata import version; print(version({package!r}))"
    return _run(venv, ["python", "-c", probe], user.files.elsewhere, user.env).stdout.strip()


def test_lowest_airflow_keeps_its_version_and_catches_a_fault(user: User) -> None:
    """The deployment's Airflow is still the lowest declared one; the user's add_chaos DAG
    parses there, its control run is clean and a fault run is caught and alerted."""
    venv = _venv("MLCHAOS_LOWEST_VENV")
    assert _version(venv, user, "apache-airflow") == os.environ["MLCHAOS_LOWEST_AIRFLOW"]
    file = user.files.project / "lowest.yaml"
    file.write_text(experiments_text(until="nulls-unread"))
    slack_before = len(user.slack.requests)
    dags = str(user.files.dags)
    journal = user.suite(venv, "--airflow-dag", DAG_ID, "--dags-folder", dags, file=file)
    assert run_verdicts(journal) == {
        ("airflow", "control"): "clean",
        ("airflow", "nulls-amount"): "caught",
    }
    assert len(user.slack.requests) > slack_before


def test_lowest_dagster_keeps_its_version_and_gives_the_verdicts(user: User) -> None:
    venv = _venv("MLCHAOS_LOWEST_VENV")
    assert _version(venv, user, "dagster") == os.environ["MLCHAOS_LOWEST_DAGSTER"]
    alerts_before = len(user.pager.requests)
    journal = user.suite(venv, "--dagster-defs", "mymod:defs", "--job", "nightly")
    assert run_verdicts(journal) == {("dagster", k): v for k, v in EXPECTED.items()}
    assert len(user.pager.requests) > alerts_before
