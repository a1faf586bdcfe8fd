"""Fault drills on the Celery Airflow (DAG :mod:`.probe_dag`, experiments ``probe.yaml``):

* abort: while a connector fault bites inside a worker, ``mlchaos abort`` runs as a third
  process; measured: how long after the CLI returned the worker still saw injected failures.
* kill: the worker running the probe task while a column is dropped (stored fault, 25 s lease)
  is SIGKILLed with its task; after the lease expires the next task (a dormant probe run on the
  surviving worker) restores - else ``mlchaos restore --expired-only`` - and the feature table
  must be identical to before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlchaos_orchestration.testing.distributed.airflow_celery import PROBE_DAG, CeleryAirflow

PROBE_FILE = str(Path(__file__).with_name("probe.yaml"))


@dataclass
class DrillResult:
    abort_s: float | None = None  #: last injected failure after the abort CLI returned (<= 2)
    killed: str = ""  #: the worker SIGKILLed while holding the faults
    restored_by: str = ""  #: "next task" or "cli"
    table_identical: bool = False
    errors: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return (
            self.abort_s is not None
            and self.abort_s <= 2.0
            and bool(self.restored_by)
            and self.table_identical
            and not self.errors
        )


def _client(stack: CeleryAirflow) -> Any:
    from mlchaos_orchestration.suite.airflow_rest import AirflowRest

    return AirflowRest(stack.url, username="admin", password=stack.password())


def _trigger(stack: CeleryAirflow, key: str, experiment: str | None, probe_s: float) -> None:
    import datetime as dt

    conf: dict[str, Any] = {"probe_s": probe_s}
    if experiment:
        conf["mlchaos"] = {"experiment": experiment, "experiments_file": PROBE_FILE}
    when = dt.datetime.now(dt.timezone.utc).isoformat()
    _client(stack).trigger(PROBE_DAG, key, conf, when)


def _rows(dsn: str, run_id: str) -> list[tuple[float, bool, str]]:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('probe') IS NOT NULL")
            if not cur.fetchone()[0]:
                return []
            cur.execute("SELECT ts, ok, home FROM probe WHERE run_id = %s ORDER BY ts", (run_id,))
            return list(cur.fetchall())
    finally:
        conn.close()


def _wait_rows(dsn: str, run_id: str, pred: Any, timeout_s: float) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = _rows(dsn, run_id)
        if pred(rows):
            return rows
        time.sleep(0.3)
    raise TimeoutError(f"probe {run_id}: {len(rows)} rows after {timeout_s:.0f}s")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    mlchaos = str(Path(sys.executable).with_name("mlchaos"))
    return subprocess.run(
        [mlchaos, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _fingerprint(url: str) -> tuple[list[str], str]:
    """Columns and an md5 of every row (ordered) of the feature table."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            cols = [c["name"] for c in sa.inspect(conn).get_columns("features")]
            digest = conn.execute(
                sa.text("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM features t")
            ).scalar()
    finally:
        engine.dispose()
    return cols, str(digest)


def abort_drill(stack: CeleryAirflow, env: dict[str, str], dsn: str) -> float:
    """Seconds between the abort CLI returning and the last injected failure in the worker."""
    key = f"drill_abort_{int(time.time())}"
    _trigger(stack, key, "probe-abort", probe_s=30)
    _wait_rows(dsn, key, lambda r: sum(not ok for _, ok, _ in r) >= 5, 300)
    from mlchaos_orchestration.core.control import run_id_for

    done = _cli(env, "abort", "--run", run_id_for(key, "probe-abort"))  # not the Dagster runs
    returned = time.time()
    rows = _wait_rows(dsn, key, lambda r: r and r[-1][0] > returned + 3, 60)
    last_fail = max((ts for ts, ok, _ in rows if not ok), default=returned)
    if done.returncode:
        raise RuntimeError(f"mlchaos abort failed: {done.stdout}{done.stderr}")
    return max(0.0, last_fail - returned)


def kill_drill(stack: CeleryAirflow, env: dict[str, str], dsn: str, result: DrillResult) -> None:
    """SIGKILL the worker holding the faults; recovery by the next task, else the CLI."""
    from mlchaos_orchestration.core.control import run_id_for

    url = env["MLCHAOS_FEATURES_URL"]
    before = _fingerprint(url)
    key = f"drill_kill_{int(time.time())}"
    _trigger(stack, key, "probe-kill", probe_s=120)
    rows = _wait_rows(dsn, key, lambda r: len(r) >= 5, 300)  # the probe task is running
    home = Path(rows[-1][2])
    result.killed = home.name
    _kill_tree(stack.group.procs[home.name].pid)
    dropped = "age" not in _fingerprint(url)[0]
    _wait_leases_expired(env["MLCHAOS_LEDGER_URL"], run_id_for(key, "probe-kill"))
    _trigger(stack, f"drill_next_{int(time.time())}", None, probe_s=1)  # a dormant next task
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _fingerprint(url) != before:
        time.sleep(1)
    if _fingerprint(url) == before and dropped:
        result.restored_by = "next task"
    else:
        _cli(env, "restore", "--expired-only")
        result.restored_by = "cli" if _fingerprint(url) == before else ""
    result.table_identical = dropped and _fingerprint(url) == before


def _wait_leases_expired(ledger_url: str, run_id: str, timeout_s: float = 120) -> None:
    """Until every live lease of ``run_id`` is past its expiry (the holder is dead)."""
    from mlchaos_orchestration.core.ledger import Ledger

    ledger, deadline = Ledger(ledger_url), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        leases = ledger.live_leases(run_id=run_id)
        if all(lease.expires_at < time.time() - 0.5 for lease in leases):  # none: restored
            return
        time.sleep(0.5)


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant (a host lost with its task processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_drills(stack: CeleryAirflow, env: dict[str, str], dsn: str) -> DrillResult:
    """Both drills; a broken one leaves its fields empty and its error in ``errors``."""
    result = DrillResult()
    try:
        result.abort_s = abort_drill(stack, env, dsn)
    except Exception as exc:  # noqa: BLE001 - reported, fails the run
        result.errors.append(f"abort drill: {type(exc).__name__}: {exc}")
    try:
        kill_drill(stack, env, dsn, result)
    except Exception as exc:  # noqa: BLE001 - reported, fails the run
        result.errors.append(f"kill drill: {type(exc).__name__}: {exc}")
    return result
