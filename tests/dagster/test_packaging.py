"""Import isolation, the example code location, the resilience job and the weekly schedule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_support import DS

from mlchaos_orchestration.core.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_import_does_not_pull_airflow_or_dagster() -> None:
    done = _python(
        "import sys, mlchaos_orchestration.dagster as m; m.__all__; "
        "print(sorted(k for k in ('airflow', 'dagster') if k in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_adapter_modules_never_import_airflow() -> None:
    done = _python(
        "import sys; from mlchaos_orchestration.dagster import with_chaos, "
        "run_experiment_dagster, gx_blocking_check, resilience_job; "
        "import dagster_defs; print('airflow' in sys.modules)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_example_code_location_validates(tmp_path: Path) -> None:
    env = {**os.environ, "MLCHAOS_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "definitions",
            "validate",
            "-m",
            "dagster_defs",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_example_defs_ship_sensor_schedule_and_job(example_env: Any) -> None:
    from mlchaos_orchestration.examples.definitions import build_defs

    defs = build_defs()
    sensor = defs.resolve_sensor_def("mlchaos_alert_on_failure")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    schedule = defs.resolve_schedule_def("mlchaos_resilience_weekly")
    assert schedule.cron_schedule == "0 3 * * 1"
    assert schedule.job_name == "mlchaos_resilience"
    assert defs.resolve_job_def("mlchaos_resilience") is not None


def test_resilience_job_runs_matrix_with_control(
    example_env: Any, instance: Any, webhook: Any
) -> None:
    from mlchaos_orchestration.examples.definitions import build_defs

    job = build_defs().resolve_job_def("mlchaos_resilience")
    config = {
        "ops": {
            "mlchaos_resilience_matrix": {"config": {"ds": DS, "experiments": ["nulls-amount"]}}
        }
    }
    result = job.execute_in_process(run_config=config, instance=instance)
    assert result.success
    rows = result.output_for_node("mlchaos_resilience_matrix")
    assert [(r["experiment"], r["verdict"]) for r in rows] == [
        ("control", "clean"),
        ("nulls-amount", "caught"),
    ]
    assert all(r["as_expected"] for r in rows)
    runs = Ledger().list_runs(suite_id=f"dagster-{result.run_id}")
    assert sorted(r["experiment"] for r in runs) == ["control", "nulls-amount"]
    assert webhook.wait_for(1, timeout=10)
