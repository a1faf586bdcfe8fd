"""What keeps ``mlchaos demo`` fast: an Airflow home is migrated and serialized once per Airflow
version and DAG files (later suites reuse it), and ``dag.test()``'s own 1 s scheduling pauses
are shortened while every other sleep keeps its length."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.airflow import dagtest
from mlchaos_orchestration.suite import airflow_worker


@pytest.fixture
def airflow_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands run by ``prepare_airflow_home`` (recorded, not run: the
    migration creates the metadata DB file); a fresh process state and environment."""
    calls: list[list[str]] = []

    def run(cmd: list[str], env: dict[str, str], **_: Any) -> subprocess.CompletedProcess:
        calls.append(cmd)
        Path(env["AIRFLOW_HOME"], "airflow.db").touch()
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(airflow_worker.subprocess, "run", run)
    monkeypatch.setattr(airflow_worker, "_READY", {})
    monkeypatch.setattr(os, "environ", dict(os.environ))
    return calls


def _prepare_in_new_process(home: Path, dags: Path) -> None:
    airflow_worker._READY.clear()  # as a later suite's worker process
    airflow_worker.prepare_airflow_home(home, dags)


def test_airflow_home_migrated_once_per_dag_files(
    tmp_path: Path, airflow_calls: list[list[str]]
) -> None:
    home, dags = tmp_path / "home", airflow_worker.example_dags_folder(tmp_path)
    env = airflow_worker.prepare_airflow_home(home, dags)
    assert airflow_calls == [[sys.executable, "-c", airflow_worker._MIGRATE_AND_SERIALIZE]]
    assert os.environ["AIRFLOW_HOME"] == env["AIRFLOW_HOME"] == str(home)

    airflow_worker.prepare_airflow_home(home, dags)  # same process: nothing to do
    _prepare_in_new_process(home, dags)  # a later suite: the stamp matches
    assert len(airflow_calls) == 1

    (dags / "other_dag.py").write_text("# another DAG file\n")
    _prepare_in_new_process(home, dags)  # DAG files changed: migrate + reserialize again
    assert len(airflow_calls) == 2

    (home / "airflow.db").unlink()  # the metadata DB is gone: never trust the stamp alone
    _prepare_in_new_process(home, dags)
    assert len(airflow_calls) == 3
    assert (home / "airflow.db").is_file()


def test_failed_migration_leaves_no_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(cmd: list[str], **_: Any) -> None:
        raise subprocess.CalledProcessError(1, cmd)

    monkeypatch.setattr(airflow_worker.subprocess, "run", fail)
    monkeypatch.setattr(airflow_worker, "_READY", {})
    monkeypatch.setattr(os, "environ", dict(os.environ))
    home = tmp_path / "home"
    home.mkdir()
    (home / "airflow.db").touch()
    with pytest.raises(subprocess.CalledProcessError):
        airflow_worker.prepare_airflow_home(home, airflow_worker.example_dags_folder(tmp_path))
    assert not (home / airflow_worker._STAMP).exists()
    assert not airflow_worker._READY


# a stand-in for dag.test(): same function name and file as Airflow's scheduling loop
_LOOP = compile(
    "import time\n"
    "def test(pauses, awaiting_input_tis=()):\n"
    "    for _ in range(pauses):\n"
    "        time.sleep(1)\n",
    "/venv/site-packages/airflow/sdk/definitions/dag.py",
    "exec",
)


def _loop() -> Any:
    namespace: dict[str, Any] = {}
    exec(_LOOP, namespace)  # noqa: S102 - a fixed snippet, compiled above
    return namespace["test"]


def _timed(fn: Any, *args: Any) -> float:
    start = time.monotonic()
    fn(*args)
    return time.monotonic() - start


def test_fast_polling_shortens_only_dag_test_pauses() -> None:
    loop, real_sleep = _loop(), time.sleep
    with dagtest._fast_polling():
        assert _timed(loop, 3) < 0.5  # 0.02 + 0.04 + 0.08 s instead of 3 s
        assert _timed(time.sleep, 0.3) >= 0.3  # a task's own sleep keeps its length
        assert _timed(loop, 1, {"waiting for a human"}) >= 1.0  # HITL waits unchanged
    assert time.sleep is real_sleep
    assert _timed(loop, 1) >= 1.0  # outside dag test runs: untouched


def test_deployment_safety_follows_every_edit_of_the_file(tmp_path: Path) -> None:
    """Parsed once per text (each task asks), yet a rewrite of the same size within the
    filesystem's timestamp granularity is seen at once."""
    from mlchaos_orchestration.airflow.runtime import file_default_safety

    path = tmp_path / "experiments.yaml"
    for ttl in (111, 222, 111):
        path.write_text(f"defaults:\n  safety:\n    ttl_s: {ttl}\nexperiments: []\n")
        assert file_default_safety(str(path)).ttl_s == ttl
        assert file_default_safety(str(path)).ttl_s == ttl
    path.write_text("experiments: []\n")
    assert file_default_safety(str(path)) is None
