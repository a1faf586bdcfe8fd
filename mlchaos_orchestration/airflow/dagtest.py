"""Run one DAG run with ``dag.test()`` and print its outcome as JSON (last stdout line).

``python -m mlchaos_orchestration.airflow.dagtest DAG_ID [--conf JSON] [--logical-date DATE]``
or ``... --batch JSON`` (a list of ``{"dag_id", "conf", "logical_date", "mark_success"}``: several
runs one after the other in this process; one JSON line per run, in order).

Meant to run in its own process (Airflow reads ``AIRFLOW_HOME`` and its config at import time):
the metadata DB must be migrated (``airflow db migrate``) and ``AIRFLOW__CORE__DAGS_FOLDER`` must
hold the DAG file. Prints ``{"dag_id", "run_id", "state", "tasks": {task_id: state},
"xcoms": {task_id: return value}}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, SupportsIndex


def run(
    dag_id: str,
    conf: dict[str, Any] | None = None,
    logical_date: str | None = None,
    mark_success: str | None = None,
) -> dict[str, Any]:
    """Run ``dag_id`` once in this process; return states and return values of its tasks.

    Tasks whose id matches the regex ``mark_success`` are marked successful without running.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise SystemExit(f"no DAG {dag_id!r}; import errors: {bag.import_errors}")
    when = (
        dt.datetime.fromisoformat(logical_date).replace(tzinfo=dt.timezone.utc)
        if logical_date
        else None
    )
    with _fast_polling():
        dag_run = dag.test(
            run_conf=conf or {}, logical_date=when, mark_success_pattern=mark_success
        )
    tis = dag_run.get_task_instances()
    return {
        "dag_id": dag_id,
        "run_id": dag_run.run_id,
        "state": str(dag_run.state),
        "tasks": {ti.task_id: (str(ti.state) if ti.state is not None else None) for ti in tis},
        "xcoms": _return_values(dag_id, dag_run.run_id),
    }


_POLL_FIRST_S = 0.02


@contextmanager
def _fast_polling() -> Iterator[None]:
    """Shorten the 1 s pauses of ``dag.test()``'s own scheduling loop (taken whenever a pass
    leaves tasks not yet schedulable, e.g. the teardowns after a failed task) to a back-off
    starting at 20 ms; every other ``time.sleep`` (the tasks', other threads', the wait for
    human-in-the-loop input) keeps its duration."""
    import time

    real = time.sleep
    pauses = 0

    def sleep(seconds: float | SupportsIndex) -> None:
        nonlocal pauses
        caller = sys._getframe(1)
        if (
            caller.f_code.co_name == "test"
            and caller.f_code.co_filename.endswith(_DAG_TEST_FILE)
            and not caller.f_locals.get("awaiting_input_tis")
        ):
            seconds = min(float(seconds), _POLL_FIRST_S * 2**pauses)
            pauses += 1
        real(seconds)

    time.sleep = sleep
    try:
        yield
    finally:
        time.sleep = real


_DAG_TEST_FILE = "/".join(("airflow", "sdk", "definitions", "dag.py"))


def _return_values(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(XComModel.task_id, XComModel.value).where(
        XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == "return_value"
    )
    with create_session() as session:
        return {task_id: _load(value) for task_id, value in session.execute(query)}


def _load(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dag_id", nargs="?")
    parser.add_argument("--conf", default="{}", help="run conf as JSON")
    parser.add_argument("--logical-date", default=None, help="YYYY-MM-DD")
    parser.add_argument("--mark-success", default=None, help="regex of task ids not to run")
    parser.add_argument("--batch", default=None, help="JSON list of runs (see module doc)")
    args = parser.parse_args(argv)
    if args.batch is not None:
        for spec in json.loads(args.batch):
            outcome = run(
                spec["dag_id"],
                spec.get("conf") or {},
                spec.get("logical_date"),
                spec.get("mark_success"),
            )
            sys.stdout.write("\n" + _MARK + json.dumps(outcome, default=str) + "\n")
            sys.stdout.flush()
        return 0
    if not args.dag_id:
        parser.error("give a DAG id or --batch")
    outcome = run(args.dag_id, json.loads(args.conf), args.logical_date, args.mark_success)
    sys.stdout.write("\n" + json.dumps(outcome, default=str) + "\n")
    return 0


_MARK = "@@mlchaos-dagtest@@"


def run_batch_in_subprocess(
    runs: list[dict[str, Any]], env: dict[str, str], timeout_s: float = 900.0
) -> list[dict[str, Any]]:
    """Several :func:`run` calls one after the other in ONE fresh process (Airflow's import
    and the DAG parse are paid once); their outcomes in order, each with the shared ``log``."""
    import subprocess

    cmd = [sys.executable, "-m", "mlchaos_orchestration.airflow.dagtest", "--batch"]
    proc = subprocess.run(
        [*cmd, json.dumps(runs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    outcomes = [
        json.loads(line[len(_MARK) :])
        for line in proc.stdout.splitlines()
        if line.startswith(_MARK)
    ]
    if proc.returncode != 0 or len(outcomes) != len(runs):
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        raise RuntimeError(
            f"dag test batch failed after {len(outcomes)}/{len(runs)} runs "
            f"(exit {proc.returncode}):\n{tail}"
        )
    for outcome in outcomes:
        outcome["log"] = proc.stdout + proc.stderr
    return outcomes


def run_in_subprocess(
    dag_id: str,
    env: dict[str, str],
    conf: dict[str, Any] | None = None,
    logical_date: str | None = None,
    timeout_s: float = 300.0,
    mark_success: str | None = None,
) -> dict[str, Any]:
    """Run :func:`run` in a fresh Python process with ``env``; the outcome plus its ``log``."""
    import subprocess

    cmd = [
        sys.executable,
        "-m",
        "mlchaos_orchestration.airflow.dagtest",
        dag_id,
        "--conf",
        json.dumps(conf or {}),
    ]
    if logical_date:
        cmd += ["--logical-date", logical_date]
    if mark_success:
        cmd += ["--mark-success", mark_success]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise RuntimeError(f"dag test of {dag_id} failed (exit {proc.returncode}):\n{tail}")
    outcome = json.loads(lines[-1])
    outcome["log"] = proc.stdout + proc.stderr
    return outcome


if __name__ == "__main__":
    raise SystemExit(main())
