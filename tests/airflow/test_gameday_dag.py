"""The game-day DAG: its Params form refuses unknown experiments, and a triggered run runs the
game day (real Redis, uvicorn, Locust) and returns its verdicts."""

from __future__ import annotations

import json
from typing import Any

from airflow_support import python_last_line

from mlchaos_orchestration.airflow.dagtest import run_in_subprocess


def test_params_form_lists_the_files_experiments_and_refuses_others(
    airflow_env: dict[str, str],
) -> None:
    code = (
        "import json\n"
        "from mlchaos_orchestration.airflow.gameday_dag import gameday_dag\n"
        "dag = gameday_dag()\n"
        "schema = dag.params.get_param('experiments').schema\n"
        "try:\n"
        "    dag.params.get_param('experiments').resolve(value=['no-such-experiment'])\n"
        "    refused = False\n"
        "except Exception as exc:\n"
        "    refused = type(exc).__name__\n"
        "print(json.dumps({'enum': schema['items']['enum'], 'refused': refused}))\n"
    )
    out = json.loads(python_last_line(code, airflow_env))
    assert out["enum"] == [
        "redis-latency-mitigated", "redis-latency-unmitigated", "compound",
        "amount-drift-india", "amount-drift-india-alerts-off", "feedback-skew-india",
    ]  # fmt: skip
    assert out["refused"] == "ParamValidationError"


def test_triggered_game_day_returns_its_verdicts(
    airflow_env: dict[str, str], tmp_path: Any
) -> None:
    env = {**airflow_env, "MLCHAOS_HOME": str(tmp_path / "home")}
    conf = {"experiments": ["redis-latency-mitigated"], "prometheus": False, "peak_rps": 20}
    outcome = run_in_subprocess("mlchaos_gameday", env, conf=conf, timeout_s=300)
    assert outcome["state"] == "success", outcome["log"][-3000:]
    value = outcome["xcoms"]["run_gameday"]
    assert set(value["verdicts"]) == {"redis-latency-mitigated"}
    assert value["summary"].startswith("gameday: ") and "(150% of peak 20)" in value["summary"]
    assert value["postmortem"].endswith("postmortem.html")
