"""Dagster as deployed: a DagsterInstance on PostgreSQL (dagster-postgres, queued run coordinator)
and ``dagster-daemon`` (scheduler, sensors, run queue) loading :mod:`.code_location`. The daemon's
schedules launch the runs (each its own run worker process, steps in child processes with the
multiprocess executor; the chaos runs launched by tag apply their run-start faults in the run
worker and restore them when the last step finished); its run-status sensors finish the tagged
chaos runs (verdict) and deliver the alerts."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlchaos_orchestration.testing.distributed.backends import Backends
from mlchaos_orchestration.testing.distributed.matrix_job import MATRIX_JOB
from mlchaos_orchestration.testing.distributed.procs import ProcessGroup

BIN = Path(sys.executable).parent
LOCATION = "mlchaos_orchestration.testing.distributed.code_location"
__all__ = ["MATRIX_JOB", "WEEKLY", "start", "wait_matrix", "wait_weekly"]
WEEKLY = "distributed_resilience"


@dataclass
class DaemonDagster:
    group: ProcessGroup
    home: Path

    def instance(self) -> Any:
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.home))


def weekly_file(root: Path, experiments_file: str, names: list[str]) -> str:
    """A copy of ``experiments_file`` keeping only ``names`` (the weekly run's matrix)."""
    spec = yaml.safe_load(Path(experiments_file).read_text())
    spec["experiments"] = [e for e in spec["experiments"] if e["name"] in names]
    gate_suite = (spec.get("defaults") or {}).get("gate_suite")
    if gate_suite:
        spec["defaults"]["gate_suite"] = str(Path(experiments_file).with_name(gate_suite))
    path = root / "weekly.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def _once_cron(lead_s: float = 75.0) -> str:
    """A daily cron whose next tick is the first full minute ``lead_s`` from now (UTC)."""
    import datetime as dt

    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=lead_s + 60)
    return f"{at.minute} {at.hour} * * *"


def start(
    backends: Backends, config_env: dict[str, str], mark: str, names: list[str], weekly: str
) -> DaemonDagster:
    """Write ``dagster.yaml`` (PostgreSQL storage, queued runs) and start the daemon."""
    root = backends.root / "dagster-daemon"
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    url = backends.pg.create_database("dagster")  # SQLAlchemy 2.1 defaults to psycopg 3
    config = {
        "storage": {"postgres": {"postgres_url": url}},
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            # one at a time: the experiments of the matrix and the weekly run share the data
            "config": {"max_concurrent_runs": 1},
        },
        "telemetry": {"enabled": False},
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env = {
        **config_env,
        "DAGSTER_HOME": str(home),
        "MLCHAOS_HOME": str(root / "mlchaos"),
        "MLCHAOS_REPORTS_DIR": str(root / "reports"),
        "MLCHAOS_DISTRIBUTED_EXPERIMENTS": ",".join(names),
        "MLCHAOS_WEEKLY_EXPERIMENTS": weekly,
        "MLCHAOS_WEEKLY_CRON": _once_cron(),
    }
    group = ProcessGroup("dagster-daemon", mark)
    daemon = [str(BIN / "dagster-daemon"), "run", "-m", LOCATION, "-a", "defs"]
    group.start("daemon", daemon, env, root / "daemon")
    return DaemonDagster(group, home)


def wait_matrix(stack: DaemonDagster, n: int, timeout_s: float) -> dict[str, str]:
    """experiment -> verdict tag of the schedule-launched chaos runs, once all ``n`` have one
    (missing ones: ``none``)."""
    import dagster as dg

    from mlchaos_orchestration.dagster.finishing import TAG_VERDICT
    from mlchaos_orchestration.dagster.request import TAG_EXPERIMENT

    deadline = time.monotonic() + timeout_s
    found: dict[str, str] = {}
    with stack.instance() as instance:
        while time.monotonic() < deadline:
            stack.group.check_alive()
            runs = instance.get_runs(dg.RunsFilter(job_name=MATRIX_JOB))
            found = {
                r.tags[TAG_EXPERIMENT]: r.tags.get(TAG_VERDICT, "none")
                for r in runs
                if r.is_finished
            }
            if len(found) >= n and "none" not in found.values():
                return found
            time.sleep(3)
    return found


def wait_weekly(stack: DaemonDagster, timeout_s: float) -> Any:
    """The first finished run of the weekly resilience job (None after ``timeout_s``)."""
    import dagster as dg

    deadline = time.monotonic() + timeout_s
    with stack.instance() as instance:
        while time.monotonic() < deadline:
            stack.group.check_alive()
            for run in instance.get_runs(dg.RunsFilter(job_name=WEEKLY)):
                if run.is_finished:
                    return run
            time.sleep(3)
    return None


def failed_chaos_runs(stack: DaemonDagster) -> int:
    """How many schedule-launched chaos runs failed (each must have produced an alert)."""
    import dagster as dg

    with stack.instance() as instance:
        runs = instance.get_runs(
            dg.RunsFilter(job_name=MATRIX_JOB, statuses=[dg.DagsterRunStatus.FAILURE])
        )
    return len(runs)


def sensor_alerts(requests: list[Any]) -> int:
    """Webhook posts of the daemon's alert sensor about the schedule-launched chaos runs."""
    from mlchaos_orchestration.dagster.alerting import SOURCE

    return sum(
        1
        for r in requests
        if (r.json or {}).get("source") == SOURCE and (r.json or {}).get("job") == MATRIX_JOB
    )
