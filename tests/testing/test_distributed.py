"""The pieces of ``make distributed`` that need no Airflow/Dagster stack: the process group and
its stray sweep, the weekly subset file, the verdict table and the probe DAG's chaos wiring."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import yaml

from mlchaos_orchestration.testing.distributed.__main__ import _differences, _names, _table
from mlchaos_orchestration.testing.distributed.dagster_daemon import weekly_file
from mlchaos_orchestration.testing.distributed.procs import ProcessGroup, stray_processes, sweep

EXAMPLE = Path(__file__).resolve().parents[2] / "mlchaos_orchestration/examples/experiments.yaml"
SLEEPER = [sys.executable, "-c", "import subprocess, sys, time; "
           "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
           "time.sleep(60)"]  # fmt: skip


def _wait_strays(mark: str, n: int) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = stray_processes(mark)
        if len(found) >= n:
            return found
        time.sleep(0.1)
    return stray_processes(mark)


def test_group_stop_kills_children_and_sweep_finds_escapees(tmp_path: Path) -> None:
    group = ProcessGroup("t", mark="test-group-1")
    group.start("a", SLEEPER, {"PATH": "/usr/bin"}, tmp_path / "a")
    group.start("b", SLEEPER, {"PATH": "/usr/bin"}, tmp_path / "b")
    assert len(_wait_strays("test-group-1", 4)) == 4  # two processes + their children
    assert group.procs["a"].pid != group.procs["b"].pid
    assert (tmp_path / "b" / "b.log").exists()
    group.stop(grace_s=5)
    assert stray_processes("test-group-1") == []
    assert sweep("test-group-1") == []


def test_sweep_kills_a_process_outside_the_group() -> None:
    import os
    import subprocess

    env = {**os.environ, "MLCHAOS_DISTRIBUTED_STACK": "test-escapee"}
    proc = subprocess.Popen(SLEEPER, env=env, start_new_session=True)
    try:
        assert len(_wait_strays("test-escapee", 2)) == 2
        assert proc.pid in sweep("test-escapee")
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while stray_processes("test-escapee") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stray_processes("test-escapee") == []
    finally:
        proc.kill()


def test_weekly_file_keeps_only_the_subset_and_an_absolute_gate_suite(tmp_path: Path) -> None:
    path = weekly_file(tmp_path, str(EXAMPLE), ["control", "nulls-amount"])
    spec = yaml.safe_load(Path(path).read_text())
    assert [e["name"] for e in spec["experiments"]] == ["control", "nulls-amount"]
    assert Path(spec["defaults"]["gate_suite"]).is_absolute()
    assert Path(spec["defaults"]["gate_suite"]).is_file()


def test_names_and_table() -> None:
    names = _names(str(EXAMPLE), "")
    assert names[0] == "control" and "connector-failure" in names
    assert _names(str(EXAMPLE), "control,drop-age") == ["control", "drop-age"]
    table = _table(["control", "x"], {"a": {"control": "clean"}, "bb": {"x": "caught"}})
    lines = table.splitlines()
    assert lines[0].split(" | ")[0].strip() == "experiment"
    assert lines[1].split(" | ") == ["control   ", "clean", "-     "]
    assert lines[2].split(" | ")[2].strip() == "caught"


def test_differences_name_each_run_of_a_differing_experiment_with_its_reason() -> None:
    cols = {
        "in-process airflow": {"a": "caught", "b": "not_reached"},
        "airflow-celery": {"a": "caught", "b": "caught"},
        "weekly": {"a": "caught"},
    }
    reasons = {"in-process airflow": {"b": "not_reached: intercepted 0 calls"}}
    assert _differences(["a", "b"], cols, reasons) == [
        "differs: b [in-process airflow] not_reached: intercepted 0 calls",
        "differs: b [airflow-celery] caught",
    ]


def test_reasons_of_suite_read_each_verdict_and_its_reason(tmp_path: Path) -> None:
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.testing.distributed.reference import reasons_of_suite

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    meta = {"pipeline": "p", "orchestrator": "plain", "control": False, "seed": 1, "meta": {}}
    judged = ledger.start_run("judged", suite_id="s", **meta)
    ledger.set_verdict(judged, {"verdict": "not_reached", "reason": "intercepted 0 calls"})
    ledger.start_run("unjudged", suite_id="s", **meta)
    ledger.start_run("elsewhere", suite_id="other", **meta)
    assert reasons_of_suite(url, "s") == {
        "judged": "not_reached: intercepted 0 calls",
        "unjudged": "none: -",
    }


def test_probe_dag_carries_chaos_and_the_drill_experiments_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.testing.distributed.airflow_drills import PROBE_FILE
    from mlchaos_orchestration.testing.distributed.probe_dag import dag

    ids = set(dag.task_dict)
    assert {"probe", "done", "mlchaos_setup.inject", "mlchaos_teardown.restore"} <= ids
    assert "mlchaos_setup.inject" in dag.task_dict["probe"].upstream_task_ids
    monkeypatch.setenv("MLCHAOS_RAW_ROOT", "/tmp/raw")
    monkeypatch.setenv("MLCHAOS_FEATURES_URL", "postgresql://u@h/db")
    exps = {e.name: e for e in load_experiments(PROBE_FILE).experiments}
    assert exps["probe-kill"].safety.ttl_s == 25
    kinds = [type(f.fault).__name__ for f in exps["probe-kill"].faults]
    assert kinds == ["DropColumn"]


def test_example_dag_stages_on_s3_when_told_else_locally(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Tasks of one run on different Celery workers hand data over through S3."""
    import boto3

    from mlchaos_orchestration.testing import MotoS3Server

    monkeypatch.setenv("MLCHAOS_HOME", str(tmp_path / "home"))
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("MLCHAOS_STAGING_URL", raising=False)
    from mlchaos_orchestration.examples import dag as example

    example._put("2026-11-20", "x.bin", b"local")
    assert example._get("2026-11-20", "x.bin") == b"local"
    with MotoS3Server() as s3:
        monkeypatch.setenv("MLCHAOS_S3_ENDPOINT_URL", s3.endpoint_url)
        client = boto3.client("s3", endpoint_url=s3.endpoint_url)
        client.create_bucket(Bucket="stage")
        monkeypatch.setenv("MLCHAOS_STAGING_URL", "s3://stage/runs")
        example._put("2026-11-20", "x.bin", b"remote")
        body = client.get_object(Bucket="stage", Key="runs/2026-11-20/x.bin")["Body"].read()
        assert body == b"remote"
        assert example._get("2026-11-20", "x.bin") == b"remote"


def test_only_the_daemon_sensor_alerts_about_schedule_runs_count() -> None:
    from mlchaos_orchestration.suite.receiver import ReceivedRequest
    from mlchaos_orchestration.testing.distributed.dagster_daemon import MATRIX_JOB, sensor_alerts

    def post(payload: object) -> ReceivedRequest:
        return ReceivedRequest("/", {}, b"", payload, 0.0)

    sensor = {"source": "dagster:failure_sensor", "job": MATRIX_JOB}
    requests = [
        post(sensor),
        post({**sensor, "job": "distributed_resilience"}),  # the weekly run's in-run alert
        post({"source": "airflow", "job": MATRIX_JOB}),
        post(None),  # not JSON
        post(sensor),
    ]
    assert sensor_alerts(requests) == 2
