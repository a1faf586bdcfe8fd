"""``mlchaos suite FILE --airflow-dag DAG_ID --airflow-url URL``: the suite through a running
Airflow's REST API (v2), e.g. a staging deployment.

Per experiment: ``POST /api/v2/dags/{dag_id}/dagRuns`` with ``conf = {"mlchaos": {"experiment":
name, "experiments_file": FILE, "suite_id": id}}``, poll the run until it ends, then read the
verdict the deployment's chaos tasks recorded in the ledger - so the deployment must read FILE
at the same path (it is the deployment's experiments file; run-time input only narrows its
safety) and write to the same ledger (``MLCHAOS_LEDGER_URL``).

Authentication: a JWT from ``POST /auth/token`` (Airflow's simple auth manager) with
``--airflow-user`` / ``--airflow-password`` (or ``MLCHAOS_AIRFLOW_USER`` /
``MLCHAOS_AIRFLOW_PASSWORD``), or a token given as ``MLCHAOS_AIRFLOW_TOKEN``. Problems
(unreachable URL, 401/403, unknown or paused DAG, a DAG without ``add_chaos``) are one line.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from mlchaos_orchestration.errors import MlchaosError

TOKEN_ENV = "MLCHAOS_AIRFLOW_TOKEN"
USER_ENV = "MLCHAOS_AIRFLOW_USER"
PASSWORD_ENV = "MLCHAOS_AIRFLOW_PASSWORD"
#: how long one triggered run may take before the experiment counts as without verdict
RUN_TIMEOUT_S = float(os.environ.get("MLCHAOS_AIRFLOW_RUN_TIMEOUT_S") or 3600)
TERMINAL = ("success", "failed")
#: how long to wait after a run ends for its faults to be restored before the next one starts
RELEASE_TIMEOUT_S = 120.0


@dataclass
class AirflowRest:
    """A small client of Airflow 3's public REST API (``/api/v2``)."""

    url: str
    token: str | None = None
    username: str | None = None
    password: str | None = None
    timeout_s: float = 60.0
    _client: Any = field(default=None, repr=False)

    @classmethod
    def from_env(cls, url: str, env: dict[str, str] | None = None) -> AirflowRest:
        env = dict(os.environ if env is None else env)
        return cls(
            url=url.rstrip("/"),
            token=env.get(TOKEN_ENV) or None,
            username=env.get(USER_ENV) or None,
            password=env.get(PASSWORD_ENV) or None,
        )

    # ------------------------------------------------------------------ HTTP
    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self.timeout_s)
        return self._client

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return self._http().request(method, f"{self.url}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise MlchaosError(
                f"--airflow-url {self.url}: cannot reach Airflow ({type(exc).__name__}: {exc})"
            ) from None

    def login(self) -> str:
        """The bearer token: the given one, else one from ``POST /auth/token``."""
        if self.token:
            return self.token
        if not (self.username and self.password):
            raise MlchaosError(
                f"--airflow-url {self.url}: give --airflow-user and --airflow-password "
                f"(or ${USER_ENV} / ${PASSWORD_ENV}), or a token in ${TOKEN_ENV}"
            )
        resp = self._send(
            "POST", "/auth/token", json={"username": self.username, "password": self.password}
        )
        if resp.status_code in (401, 403):
            raise MlchaosError(
                f"--airflow-url {self.url}: login refused ({resp.status_code}): wrong user or "
                "password"
            )
        self._check(resp, "POST /auth/token")
        self.token = str(resp.json()["access_token"])
        return self.token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """An authenticated ``/api/v2`` call; returns the response (401/403 raise one line)."""
        headers = {"Authorization": f"Bearer {self.login()}"}
        resp = self._send(method, f"/api/v2{path}", headers=headers, **kwargs)
        if resp.status_code in (401, 403):
            why = "not authenticated" if resp.status_code == 401 else "token invalid or not allowed"
            raise MlchaosError(
                f"--airflow-url {self.url}: {method} {path}: {resp.status_code} ({why})"
            )
        return resp

    def _check(self, resp: Any, what: str) -> None:
        if resp.status_code >= 400:
            detail = resp.text.strip().replace("\n", " ")[:300]
            raise MlchaosError(f"--airflow-url {self.url}: {what}: {resp.status_code} {detail}")

    # ------------------------------------------------------------------ DAGs and runs
    def check_dag(self, dag_id: str) -> None:
        """Raise one line unless ``dag_id`` exists, is not paused and carries ``add_chaos``."""
        from mlchaos_orchestration.airflow.runtime import SETUP_GROUP

        resp = self.api("GET", f"/dags/{quote(dag_id)}")
        if resp.status_code == 404:
            raise MlchaosError(f"--airflow-dag {dag_id!r}: no such DAG at {self.url}")
        self._check(resp, f"GET /dags/{dag_id}")
        if resp.json().get("is_paused"):
            raise MlchaosError(
                f"--airflow-dag {dag_id!r} is paused at {self.url}: unpause it (its runs would "
                "stay queued)"
            )
        tasks = self.api("GET", f"/dags/{quote(dag_id)}/tasks")
        self._check(tasks, f"GET /dags/{dag_id}/tasks")
        ids = {t["task_id"] for t in tasks.json().get("tasks", [])}
        if f"{SETUP_GROUP}.inject" not in ids:
            raise MlchaosError(
                f"DAG {dag_id!r} at {self.url} has no chaos tasks: call add_chaos(dag, "
                "before=..., gate=..., consumer=...) in its DAG file"
            )

    def trigger(
        self, dag_id: str, run_id: str, conf: dict[str, Any], logical_date: str, note: str = ""
    ) -> dict[str, Any]:
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf}
        if note:
            body["note"] = note
        resp = self.api("POST", f"/dags/{quote(dag_id)}/dagRuns", json=body)
        if resp.status_code == 404:
            raise MlchaosError(f"--airflow-dag {dag_id!r}: no such DAG at {self.url}")
        self._check(resp, f"POST /dags/{dag_id}/dagRuns")
        return dict(resp.json())

    def wait(self, dag_id: str, run_id: str, timeout_s: float = RUN_TIMEOUT_S) -> str:
        """Poll the run until it ends; its final state."""
        deadline = time.monotonic() + timeout_s
        delay = 1.0
        while True:
            resp = self.api("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}")
            self._check(resp, f"GET run {run_id}")
            state = str(resp.json().get("state"))
            if state in TERMINAL:
                return state
            if time.monotonic() > deadline:
                raise MlchaosError(
                    f"{dag_id} run {run_id} still {state} after {timeout_s:.0f} s at {self.url}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 10.0)


def run_key(experiment: str, suite_id: str) -> str:
    """The Airflow run id of one experiment of a suite."""
    return f"mlchaos_suite__{experiment}__{suite_id}"


def rest_runner(target: Any, experiments_file: str, ds: str) -> Any:
    """``one(exp, suite_id) -> verdict``: trigger, wait, read the verdict from the ledger."""
    from pathlib import Path

    from mlchaos_orchestration.core.control import run_id_for
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.suite.airflow_worker import logical_date

    client = AirflowRest.from_env(target.url)
    file = str(Path(experiments_file).resolve())
    ledger = Ledger()

    def one(exp: Any, suite_id: str) -> dict[str, Any]:
        key = run_key(exp.name, suite_id)
        conf = {"mlchaos": {"experiment": exp.name, "experiments_file": file, "suite_id": suite_id}}
        when = logical_date(ds, f"{suite_id}/{exp.name}") + "+00:00"
        client.trigger(target.ref, key, conf, when, note=f"mlchaos suite {suite_id}: {exp.name}")
        state = client.wait(target.ref, key)
        run_id = run_id_for(key, exp.name)
        run = ledger.get_run(run_id)
        if not run or not run.get("verdict_detail"):
            raise MlchaosError(
                f"{target.ref} run {key} ended {state} without a verdict in the ledger "
                f"{_safe_url(ledger.url)}: does the deployment write to the same "
                "MLCHAOS_LEDGER_URL, and "
                f"can it read {file}?"
            )
        _wait_released(ledger, run_id)
        return dict(run["verdict_detail"])

    return one


def _wait_released(ledger: Any, run_id: str, timeout_s: float = RELEASE_TIMEOUT_S) -> None:
    """Wait until the run's faults are restored (its leases released): the DagRun turns
    terminal before the deployment's finishing code restores, and the next experiment must not
    start on the previous one's faulted data. After ``timeout_s`` the next run's own guards
    decide (a lease conflict is reported there)."""
    deadline = time.monotonic() + timeout_s
    while ledger.live_leases(run_id) and time.monotonic() < deadline:
        time.sleep(0.2)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def check_rest_target(target: Any) -> str | None:
    """Preflight of an ``--airflow-url`` target: reachable, authenticated, DAG usable."""
    AirflowRest.from_env(target.url).check_dag(target.ref)
    return None
