"""The Airflow side of ``mlchaos suite``: one experiment = one real ``dag.test()`` run of the
example DAG in this worker process (its own migrated SQLite metadata DB under MLCHAOS_HOME)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

DAG_ID = "feature_pipeline"
_READY: dict[str, bool] = {}


def prepare_airflow_home(home: Path, dags_folder: Path) -> dict[str, str]:
    """Point this process at a migrated Airflow home with the repo's DAGs (before importing
    Airflow); migrate and serialize the DAGs once."""
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    os.environ.update(env)
    if not _READY.get(str(home)):
        home.mkdir(parents=True, exist_ok=True)
        airflow = str(Path(sys.executable).with_name("airflow"))
        for args in (["db", "migrate"], ["dags", "reserialize"]):
            subprocess.run(
                [airflow, *args], env={**os.environ}, check=True, capture_output=True, timeout=600
            )
        _READY[str(home)] = True
    return env


def run_one(exp: Any, *, suite_id: str, config: Any) -> dict[str, Any]:
    """Run ``exp`` (inline in the run conf) against the example DAG for ``config.ds``."""
    from mlchaos_orchestration.settings import get_settings
    from mlchaos_orchestration.suite.run import REPO_ROOT

    prepare_airflow_home(
        get_settings().data_dir / "suite" / "airflow" / "airflow_home", REPO_ROOT / "dags"
    )
    from mlchaos_orchestration.airflow.dagtest import run

    conf = {"mlchaos": {"experiment": exp.spec(), "suite_id": suite_id}}
    return run(DAG_ID, conf, config.ds)
