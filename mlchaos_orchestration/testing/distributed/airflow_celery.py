"""Airflow with the CeleryExecutor on loopback: ``api-server``, ``scheduler``, ``dag-processor``
and two ``celery worker``s, each its own process with its own AIRFLOW_HOME / MLCHAOS_HOME /
working directory; metadata and Celery results on PostgreSQL, the broker on Redis, raw data on
S3. The matrix is triggered through the REST API (:mod:`~mlchaos_orchestration.suite.airflow_rest`).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlchaos_orchestration.suite.airflow_worker import DAG_ID, example_dags_folder
from mlchaos_orchestration.testing.distributed.backends import Backends
from mlchaos_orchestration.testing.distributed.procs import ProcessGroup
from mlchaos_orchestration.testing.servers import free_port

BIN = Path(sys.executable).parent
WORKERS = ("worker-1", "worker-2")
PROBE_DAG = "mlchaos_probe"
PROBE_DAG_FILE = (
    '"""airflow DAG file written by make distributed: the probe of the fault drills."""\n'
    "from mlchaos_orchestration.testing.distributed.probe_dag import dag  # noqa: F401\n"
)
DAGS = (DAG_ID, PROBE_DAG)


@dataclass
class CeleryAirflow:
    """Handle on the running stack (see the module docstring)."""

    group: ProcessGroup
    port: int
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def password(self) -> str:
        home = self.group.dirs["api-server"]
        data = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        return str(data["admin"])


def airflow_env(backends: Backends, port: int, config_env: dict[str, str]) -> dict[str, str]:
    """The configuration every Airflow component gets (the same on every 'host')."""
    from cryptography.fernet import Fernet

    db = backends.pg.create_database("airflow")
    return {
        **config_env,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
        "AIRFLOW__CELERY__BROKER_URL": backends.redis.url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }


def start(backends: Backends, config_env: dict[str, str], mark: str) -> CeleryAirflow:
    """Migrate the metadata DB, start the five components, wait until they are healthy."""
    root = backends.root / "airflow-celery"
    port = free_port()
    env = airflow_env(backends, port, config_env)
    dags = example_dags_folder(root / "deployed")
    (dags / f"{PROBE_DAG}.py").write_text(PROBE_DAG_FILE)
    backends.pg.create_database("probe")
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    env["MLCHAOS_PROBE_DSN"] = probe_dsn(backends)

    def host(name: str) -> tuple[dict[str, str], Path]:
        cwd = root / name
        return {
            **env,
            "AIRFLOW_HOME": str(cwd),
            "MLCHAOS_HOME": str(cwd / "mlchaos"),
            "MLCHAOS_REPORTS_DIR": str(cwd / "reports"),
        }, cwd

    menv, mcwd = host("migrate")
    mcwd.mkdir(parents=True, exist_ok=True)
    airflow = str(BIN / "airflow")
    subprocess.run(
        [airflow, "db", "migrate"], env=menv, cwd=mcwd, check=True, capture_output=True, timeout=600
    )
    group = ProcessGroup("airflow-celery", mark)
    commands = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
        **{
            w: ["celery", "worker", "--concurrency", "1", "-H", f"{w}@%h", "--without-mingle"]
            for w in WORKERS
        },
    }
    for name, args in commands.items():
        henv, cwd = host(name)
        group.start(name, [airflow, *args], henv, cwd)
    stack = CeleryAirflow(group, port, env)
    try:
        _wait_healthy(stack, 300)
    except BaseException:
        group.stop()
        raise
    return stack


def probe_dsn(backends: Backends) -> str:
    """libpq DSN of the drills' probe log (database ``probe``)."""
    return f"host=127.0.0.1 port={backends.pg.port} user={backends.pg.user} dbname=probe"


def _wait_healthy(stack: CeleryAirflow, timeout_s: float) -> None:
    """The API answers, the execution API is warmed up (its first request is slow), the
    scheduler and dag processor report healthy, and the example DAG is serialized."""
    import httpx

    deadline = time.monotonic() + timeout_s
    last: Any = None
    with httpx.Client(timeout=180, trust_env=False) as http:
        while time.monotonic() < deadline:
            stack.group.check_alive()
            try:
                http.get(f"{stack.url}/execution/health").raise_for_status()
                body = http.get(f"{stack.url}/api/v2/monitor/health").json()
                last = body
                if all(
                    (body.get(k) or {}).get("status") == "healthy"
                    for k in ("metadatabase", "scheduler", "dag_processor")
                ) and _dag_loaded(stack, http):
                    return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
            time.sleep(1)
    logs = stack.group.logs()
    raise TimeoutError(f"Celery Airflow not ready after {timeout_s:.0f}s: {last}\n{logs}")


def _dag_loaded(stack: CeleryAirflow, http: Any) -> bool:
    token = http.post(
        f"{stack.url}/auth/token", json={"username": "admin", "password": stack.password()}
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    codes = [http.get(f"{stack.url}/api/v2/dags/{d}", headers=auth).status_code for d in DAGS]
    return codes == [200] * len(DAGS)


def run_matrix(
    stack: CeleryAirflow, experiments_file: str, suite_id: str, ds: str, names: list[str]
) -> dict[str, str]:
    """Trigger each experiment through the REST API, one after the other; experiment -> verdict
    (read from the ledger the workers wrote to)."""
    import os

    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.suite.airflow_rest import PASSWORD_ENV, USER_ENV, rest_runner
    from mlchaos_orchestration.suite.user_targets import Target

    os.environ.update({USER_ENV: "admin", PASSWORD_ENV: stack.password()})
    # the file's ${MLCHAOS_*} (data locations) as the deployment sees them
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith("MLCHAOS_")})
    target = Target(kind="airflow", ref=DAG_ID, url=stack.url, label="airflow-celery")
    one = rest_runner(target, experiments_file, ds)
    verdicts = {}
    for exp in load_experiments(experiments_file).experiments:
        if exp.name not in names:
            continue
        try:
            verdicts[exp.name] = str(one(exp, suite_id).get("verdict"))
        except Exception as exc:  # noqa: BLE001 - counted as a difference, the matrix goes on
            verdicts[exp.name] = f"error: {exc}"[:200]
    return verdicts
