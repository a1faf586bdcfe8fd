"""The game day as an Airflow DAG: trigger it from the UI, pick experiments in the Params form.

``gameday_dag(gameday_file=..., dag_id="mlchaos_gameday")`` returns a DAG whose one task runs
``mlchaos gameday`` in a child process (Locust's gevent never enters the task's process), logs
the summary line last and returns the verdicts and the post-mortem's path. The experiment names
of the form are read from the file at parse time (YAML only: cheap).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from airflow.sdk import DAG, Param, task

EXAMPLE_GAMEDAY = Path(__file__).resolve().parents[1] / "examples" / "gameday.yaml"


def experiment_names(path: str | Path) -> list[str]:
    """Names of the file's experiments (no validation: the task validates the whole file)."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    return [str(e.get("name")) for e in raw.get("experiments") or [] if isinstance(e, dict)]


def gameday_dag(
    gameday_file: str | Path = EXAMPLE_GAMEDAY,
    *,
    dag_id: str = "mlchaos_gameday",
    schedule: Any = None,
    reports_dir: str | Path | None = None,
) -> DAG:
    """A manually triggered (or scheduled) game day of ``gameday_file``."""
    names = experiment_names(gameday_file)
    params = {
        "experiments": Param(
            names,
            type="array",
            items={"type": "string", "enum": names},
            minItems=1,
            uniqueItems=True,
            title="Experiments",
            description="Which experiments of the game-day file to run, in order.",
        ),
        "prometheus": Param(
            True,
            type="boolean",
            title="Probe through Prometheus",
            description="Off: probes read the API's /metrics directly.",
        ),
        "peak_rps": Param(
            0,
            type="number",
            minimum=0,
            maximum=100_000,
            title="Peak (req/s)",
            description="0 measures the API's peak first; a number skips the measurement.",
        ),
    }
    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        max_active_runs=1,
        params=params,
        tags=["mlchaos", "gameday"],
        doc_md=__doc__,
    ) as dag:

        @task(task_id="run_gameday")
        def run_gameday(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict:
            """Run the game day; fail if it produced no verdicts."""
            import logging

            from mlchaos_orchestration.gameday.process import run_gameday_process
            from mlchaos_orchestration.settings import get_settings

            p = params or {}
            out = Path(reports_dir or get_settings().data_dir / "reports" / "gameday")
            done = run_gameday_process(
                gameday_file,
                out,
                experiments=list(p.get("experiments") or names),
                prometheus=bool(p.get("prometheus", True)),
                peak_rps=float(p.get("peak_rps") or 0),
            )
            logging.getLogger(__name__).info("post-mortem: %s", done.postmortem)
            logging.getLogger(__name__).info("%s", done.last_line)
            return {
                "verdicts": done.verdicts,
                "postmortem": str(done.postmortem),
                "summary": done.last_line,
            }

        run_gameday()
    return dag
