"""Airflow e2e fixtures: one migrated AIRFLOW_HOME (SQLite) per test session / xdist worker, a
DAGs folder holding the project's DAGs plus the test DAGs, and the example pipeline's data.

Every DAG run happens in a subprocess (``mlchaos_orchestration.airflow.dagtest``), since Airflow
reads its home and config at import time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # airflow_support, before test modules load

REPO = Path(__file__).resolve().parents[2]
DS = "2026-11-20"
_CLEARED = (
    "MLCHAOS_ALLOWED_TARGETS",
    "MLCHAOS_ENVIRONMENT",
    "MLCHAOS_ALLOW_PRODUCTION",
    "MLCHAOS_EXPERIMENTS_FILE",
    "MLCHAOS_S3_ENDPOINT_URL",
    "MLCHAOS_DS",
)


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Env of a migrated Airflow home whose DAGs folder has dags/ and tests/airflow/dags/."""
    root = tmp_path_factory.mktemp("airflow")
    dags = root / "dags"
    dags.mkdir()
    for src in [*(REPO / "dags").iterdir(), *(REPO / "tests/airflow/dags").iterdir()]:
        if src.suffix in (".py", ".yaml"):
            shutil.copy(src, dags / src.name)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "MLCHAOS_")) and k not in _CLEARED
    }
    env.update(
        {
            "AIRFLOW_HOME": str(root / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    start = time.monotonic()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    env["MLCHAOS_TEST_MIGRATE_S"] = f"{time.monotonic() - start:.1f}"
    return env


@dataclass
class Scenario:
    """One isolated MLCHAOS_HOME with example data, and the env to run DAGs in it."""

    env: dict[str, str]
    home: Path
    config: Any
    baseline: dict[str, Any] = field(default_factory=dict)

    def run(
        self, dag_id: str, conf: dict[str, Any] | None = None, logical_date: str | None = DS
    ) -> dict[str, Any]:
        from mlchaos_orchestration.airflow.dagtest import run_in_subprocess

        return run_in_subprocess(dag_id, self.env, conf, logical_date)

    def ledger(self) -> Any:
        from mlchaos_orchestration.core.ledger import Ledger

        return Ledger(self.env["MLCHAOS_LEDGER_URL"])

    def verdict(self, outcome: dict[str, Any], experiment: str) -> dict[str, Any]:
        from mlchaos_orchestration.core.control import run_id_for

        run = self.ledger().get_run(run_id_for(outcome["run_id"], experiment))
        assert run is not None, f"no ledger run for {experiment}"
        return run["verdict_detail"]

    def events(self, outcome: dict[str, Any], experiment: str) -> list[Any]:
        from mlchaos_orchestration.core.control import run_id_for

        return self.ledger().events(run_id_for(outcome["run_id"], experiment))

    def checksums(self) -> dict[str, Any]:
        """Checksums of the raw events dir and of the run date's features partition."""
        from mlchaos_orchestration.core.targets import Target
        from mlchaos_orchestration.stores.base import get_store

        raw = Target.parse(self.config.raw_root)
        table = Target.parse(
            {"url": self.config.features_url, "table": "features", "where": {"ds": DS}}
        )
        return {"raw": get_store(raw).checksum(raw), "features": get_store(table).checksum(table)}


@pytest.fixture
def scenario(
    airflow_env: dict[str, str], tmp_path: Path, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> Scenario:
    """Example data (5 daily partitions, the run date's features partition built once) plus the
    env pointing the DAG at it and alerts at the ``webhook`` receiver."""
    from mlchaos_orchestration.examples.locations import ExampleConfig, prepare
    from mlchaos_orchestration.examples.steps import build_features, ingest, write_features

    home = tmp_path / "mlchaos"
    home.mkdir()
    cfg = ExampleConfig(
        raw_root=str(home / "raw" / "events"),
        features_url=f"sqlite:///{home / 'features.db'}",
        model_dir=str(home / "models"),
        ds=DS,
    )
    prepare(cfg)
    write_features(build_features(ingest(cfg.raw_root, DS)), cfg.features_url, ds=DS)
    env = {
        **airflow_env,
        **{k: v for k, v in cfg.export().items() if k != "MLCHAOS_DS"},
        "MLCHAOS_HOME": str(home),
        "MLCHAOS_LEDGER_URL": f"sqlite:///{home / 'ledger.db'}",
        "MLCHAOS_ALERT_WEBHOOK_URL": webhook.url,
        "MLCHAOS_ALLOWED_TARGETS": str(tmp_path),
    }
    for key in ("MLCHAOS_HOME", "MLCHAOS_LEDGER_URL"):
        monkeypatch.setenv(key, env[key])
    sc = Scenario(env=env, home=home, config=cfg)
    sc.baseline = sc.checksums()
    return sc


@pytest.fixture
def task_states() -> Callable[[dict[str, Any]], dict[str, str]]:
    """Task states of a run outcome without the chaos tasks."""
    from mlchaos_orchestration.airflow.runtime import is_chaos_task_id

    def states(outcome: dict[str, Any]) -> dict[str, str]:
        return {k: v for k, v in outcome["tasks"].items() if not is_chaos_task_id(k)}

    return states
