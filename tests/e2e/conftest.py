"""A real Airflow (api-server + scheduler + dag-processor, LocalExecutor) on a free loopback
port with a throwaway AIRFLOW_HOME, for browser tests.

Metadata: SQLite (Airflow on PostgreSQL needs ``asyncpg``, which the venv lacks), switched to
WAL mode so the UI's readers and the scheduler's writes do not wait on each other. The
execution API is warmed up before any task runs (see :meth:`AirflowStack.warm_execution_api`).

Every Airflow process runs in one new process group that :meth:`AirflowStack.stop` terminates;
a guardian process kills that group too if the test process dies first.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from mlchaos_orchestration.testing.servers import _Guardian, free_port

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))  # user_pipeline, before test modules load
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 60_000
UI_PLUGIN = '''"""Test-only: expose the Resilience app unless MlchaosPlugin already does."""
from airflow.plugins_manager import AirflowPlugin

import mlchaos_orchestration.airflow.plugin as project_plugin  # a module: not re-registered
from mlchaos_orchestration.airflow.ui import resilience_app, resilience_view


class MlchaosUiTestPlugin(AirflowPlugin):
    name = "mlchaos_ui_test"
    if not getattr(project_plugin.MlchaosPlugin, "fastapi_apps", None):
        fastapi_apps = [resilience_app()]
        external_views = [resilience_view()]
'''


def _http() -> Any:
    import httpx

    return httpx.Client(timeout=60, trust_env=False)  # a loaded 2-core box answers slowly


@dataclass
class AirflowStack:
    """Handle on the running Airflow; ``env`` is the environment its processes see."""

    root: Path
    port: int
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    _token: str | None = None
    _guardian: Any = None

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def home(self) -> Path:
        return Path(self.env["AIRFLOW_HOME"])

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout_s: float = 170.0) -> None:
        """``airflow db migrate``, then the three components; wait until they are healthy."""
        t0 = time.monotonic()
        migrate = subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stderr[-3000:]}")
        self.timings["migrate_s"] = time.monotonic() - t0
        with sqlite3.connect(self.home / "airflow.db") as db:  # persistent in the file
            db.execute("PRAGMA journal_mode=WAL")
        commands = {
            "api-server": [
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
        }
        pgid = 0
        for name, args in commands.items():
            log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - owned by the process
            proc = subprocess.Popen(
                [str(BIN / "airflow"), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=pgid,
            )
            log.close()
            pgid = pgid or proc.pid
            self.procs.append(proc)
            if self._guardian is None:
                self._guardian = _Guardian(
                    {
                        "commands": [
                            [
                                "/bin/sh",
                                "-c",
                                f"kill -TERM -{pgid} 2>/dev/null"
                                f" && {{ sleep 5; kill -KILL -{pgid}; }}; true",
                            ]
                        ]
                    }
                )
        self.wait_healthy(timeout_s - (time.monotonic() - t0), listening_only=True)
        self.warm_execution_api()  # while the scheduler and the dag processor boot
        self.wait_healthy(timeout_s - (time.monotonic() - t0))
        self.timings["ready_s"] = time.monotonic() - t0

    def warm_execution_api(self) -> None:
        """Make the first execution-API request now, not from the first task.

        The execution API (cadwyn) builds its versioned routes on its first request, inside the
        API server's event loop: on a loaded 2-core box that froze the whole server for ~40 s,
        the first task's ``PATCH .../run`` timed out after its retries and the task was killed.
        """
        t0 = time.monotonic()
        with _http() as http:
            http.get(f"{self.base_url}/execution/health", timeout=180).raise_for_status()
        self.timings["execution_api_warmup_s"] = time.monotonic() - t0

    def wait_healthy(self, timeout_s: float, *, listening_only: bool = False) -> None:
        """Wait for /api/v2/monitor/health: metadatabase, scheduler and dag processor healthy
        (with ``listening_only``: until the API server answers at all)."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        with _http() as http:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    body = http.get(f"{self.base_url}/api/v2/monitor/health").json()
                    last = body
                    if listening_only or all(
                        (body.get(k) or {}).get("status") == "healthy"
                        for k in ("metadatabase", "scheduler", "dag_processor")
                    ):
                        return
                except Exception as exc:  # noqa: BLE001 - not listening yet
                    last = exc
                time.sleep(0.5)
        raise TimeoutError(f"Airflow not healthy after {timeout_s:.0f}s: {last}\n{self.logs()}")

    def _check_alive(self) -> None:
        dead = [p for p in self.procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"an Airflow process exited ({dead[0].args[1]})\n{self.logs()}")

    def stop(self) -> None:
        """Terminate the whole process group (SIGTERM, then SIGKILL after 8 s)."""
        if not self.procs:
            return
        pgid = self.procs[0].pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 8
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for proc in self.procs:
            proc.wait(timeout=10)
        if self._guardian is not None:
            self._guardian.release()

    def logs(self, lines: int = 25) -> str:
        out = []
        for path in sorted(self.root.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    # ------------------------------------------------------------------ REST
    def admin_password(self) -> str:
        data = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        return str(data["admin"])

    def token(self) -> str:
        """A JWT from ``POST /auth/token`` for the generated admin user."""
        if self._token is None:
            with _http() as http:
                resp = http.post(
                    f"{self.base_url}/auth/token",
                    json={"username": "admin", "password": self.admin_password()},
                )
                resp.raise_for_status()
                self._token = resp.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """An authenticated REST call; returns the httpx response."""
        with _http() as http:
            return http.request(
                method,
                f"{self.base_url}{path}",
                headers={"Authorization": f"Bearer {self.token()}"},
                **kwargs,
            )

    def wait_dag(self, dag_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait until the dag processor has serialized ``dag_id``; return its details."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            resp = self.api("GET", f"/api/v2/dags/{dag_id}/details")
            if resp.status_code == 200:
                return resp.json()
            time.sleep(1)
        errors = self.api("GET", "/api/v2/importErrors").text[-3000:]
        raise TimeoutError(
            f"DAG {dag_id} not loaded after {timeout_s:.0f}s; import errors: "
            f"{errors}\n{self.logs()}"
        )

    def wait_first_run(self, dag_id: str, timeout_s: float = 30.0) -> str:
        """The run id of the first run of ``dag_id`` once it exists."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            runs = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns").json()["dag_runs"]
            if runs:
                return str(runs[0]["dag_run_id"])
            time.sleep(0.5)
        raise TimeoutError(f"no run of {dag_id} after {timeout_s:.0f}s")

    def wait_run(self, dag_id: str, run_id: str, timeout_s: float) -> dict[str, Any]:
        """Wait for a run to reach a terminal state; return it."""
        deadline = time.monotonic() + timeout_s
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_alive()
            run = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}").json()
            if run.get("state") in ("success", "failed"):
                return run
            time.sleep(1)
        raise TimeoutError(
            f"{dag_id} run {run_id} not finished after {timeout_s:.0f}s: "
            f"{run.get('state')}\n{self.logs()}"
        )

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        resp = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances")
        return {t["task_id"]: t["state"] for t in resp.json()["task_instances"]}


def _example_data(home: Path) -> dict[str, str]:
    """The example pipeline's raw partitions around today (UI-triggered runs are dated now);
    the MLCHAOS_* env that points the DAGs at them."""
    import datetime as dt

    from mlchaos_orchestration.examples.locations import ExampleConfig, prepare

    tomorrow = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)
    cfg = ExampleConfig(
        raw_root=str(home / "raw" / "events"),
        features_url=f"sqlite:///{home / 'features.db'}",
        model_dir=str(home / "models"),
        ds=tomorrow.isoformat(),
    )
    prepare(cfg, days=6)
    return {k: v for k, v in cfg.export().items() if k != "MLCHAOS_DS"}


def make_stack(root: Path, webhook_url: str) -> AirflowStack:
    """An (unstarted) Airflow under ``root`` whose tasks write to a throwaway mlchaos ledger and
    alert ``webhook_url``; the DAGs folder is the repo's ``dags/``."""
    home, mlchaos_home, reports = root / "airflow", root / "mlchaos", root / "reports"
    for path in (home / "plugins", mlchaos_home, reports):
        path.mkdir(parents=True)
    (home / "plugins" / "mlchaos_ui_test_plugin.py").write_text(UI_PLUGIN)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLCHAOS_"))}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            # every DAG active, but only runs someone triggers (no scheduled runs competing)
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
            "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "MLCHAOS_HOME": str(mlchaos_home),
            "MLCHAOS_LEDGER_URL": f"sqlite:///{mlchaos_home / 'ledger.db'}",
            "MLCHAOS_REPORTS_DIR": str(reports),
            "MLCHAOS_ALERT_WEBHOOK_URL": webhook_url,
            "MLCHAOS_ALLOWED_TARGETS": str(root),
        }
    )
    env.update(_example_data(mlchaos_home))
    return AirflowStack(root=root, port=port, env=env)


@pytest.fixture(scope="module")
def airflow_stack(
    tmp_path_factory: pytest.TempPathFactory, webhook_module: Any, request: pytest.FixtureRequest
) -> Iterator[AirflowStack]:
    """A running Airflow (see :func:`make_stack`), stopped with all its processes at the end.
    A test module may set ``STACK_ENV`` (a function of the stack root -> extra environment)."""
    stack = make_stack(tmp_path_factory.mktemp("airflow_e2e"), webhook_module.url)
    stack.env.update(getattr(request.module, "STACK_ENV", lambda root: {})(stack.root))
    t0 = time.monotonic()
    try:
        stack.start()
        yield stack
    finally:
        t1 = time.monotonic()
        stack.stop()
        stack.timings.update(stop_s=time.monotonic() - t1, module_total_s=time.monotonic() - t0)
        print("\ne2e timings (s):", {k: round(v, 1) for k, v in stack.timings.items()})


@pytest.fixture(scope="module")
def webhook_module() -> Iterator[Any]:
    """A webhook receiver living as long as the module's Airflow."""
    from mlchaos_orchestration.testing import WebhookReceiver

    with WebhookReceiver() as receiver:
        yield receiver


# ---------------------------------------------------------------------- browser
def ensure_chromium() -> Path:
    """Debian's chromium, installed through the project's bootstrap if missing."""
    if not CHROMIUM.exists():
        subprocess.run(
            [str(REPO / "scripts" / "bootstrap.sh"), "--with-browser"], check=True, timeout=600
        )
    assert CHROMIUM.exists(), "chromium missing after scripts/bootstrap.sh --with-browser"
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page; a screenshot lands in ``tmp_path`` if the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    pg = context.new_page()
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot = tmp_path / "failure.png"
        pg.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
