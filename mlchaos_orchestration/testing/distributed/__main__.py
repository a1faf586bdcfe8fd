"""``make distributed`` = ``python -m mlchaos_orchestration.testing.distributed [--experiments]``.

Brings up PostgreSQL + Redis + moto S3, the Celery Airflow and the daemon-driven Dagster, runs the
example matrix on both (Airflow: triggered through the REST API; Dagster: one multiprocess run per
experiment launched by tag by the daemon's schedule, plus one tick of the weekly resilience
schedule on a small subset, in its own run) and the same matrix in process (``dag.test`` /
``execute_in_process``), prints the comparison, tears everything down, and ends with
``distributed: airflow-celery <n> runs, dagster-daemon <n> runs, verdicts equal to in-process:
yes|no``. Exit code 0 only for ``yes`` with nothing left running.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from mlchaos_orchestration.testing.distributed import airflow_celery, dagster_daemon
from mlchaos_orchestration.testing.distributed.backends import Backends, example_ds
from mlchaos_orchestration.testing.distributed.procs import MARK, sweep
from mlchaos_orchestration.testing.distributed.reference import (
    log_tail,
    reasons_of_suite,
    start_reference,
    verdicts_of_suite,
)

#: the weekly resilience tick's matrix (its run executes them in process, one after the other)
WEEKLY = ["control", "outage-missing"]


def _say(msg: str, t0: float) -> None:
    print(f"[{time.monotonic() - t0:6.1f}s] {msg}", flush=True)


def _parse(argv: list[str]) -> argparse.Namespace:
    from mlchaos_orchestration.examples.definitions import EXPERIMENTS_FILE

    ap = argparse.ArgumentParser(prog="make distributed")
    ap.add_argument("--experiments", default="", help="comma list (default: the whole matrix)")
    ap.add_argument("--file", default=EXPERIMENTS_FILE)
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs) at the end")
    ap.add_argument(
        "--weekly",
        default=",".join(WEEKLY),
        help="experiments of the daemon's weekly resilience run (the whole matrix runs as "
        "tag-launched multiprocess runs anyway)",
    )
    ap.add_argument("--no-drills", action="store_true", help="skip the abort / SIGKILL drills")
    return ap.parse_args(argv)


def _experiments(file: str) -> list[dict[str, Any]]:
    import yaml  # raw entries: the file's ${MLCHAOS_*} need a data config to load

    return list(yaml.safe_load(Path(file).read_text())["experiments"])


def _names(file: str, wanted: str) -> list[str]:
    names = [e["name"] for e in _experiments(file)]
    chosen = [n for n in wanted.split(",") if n] or names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise SystemExit(f"unknown experiment(s): {unknown}")
    return chosen


def _drills(af: Any, t0: float) -> Any:
    """The abort and kill drills (:mod:`.airflow_drills`)."""
    from mlchaos_orchestration.testing.distributed.airflow_drills import run_drills

    env = {k: v for k, v in af.env.items() if not k.startswith("AIRFLOW")}
    env["MLCHAOS_HOME"] = str(af.group.dirs["api-server"].parent / "cli" / "mlchaos")
    result = run_drills(af, env, af.env["MLCHAOS_PROBE_DSN"])
    for error in result.errors:
        _say(f"fault drill FAILED: {error}", t0)
    _say("fault drills done", t0)
    return result


def _table(names: list[str], cols: dict[str, dict[str, str]]) -> str:
    head = ["experiment", *cols]
    rows = [[n, *(c.get(n, "-") for c in cols.values())] for n in names]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    cells = ((str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in [head, *rows])
    lines = (" | ".join(c) for c in cells)
    return "\n".join(lines)


def _differences(
    names: list[str], cols: dict[str, dict[str, str]], reasons: dict[str, dict[str, str]]
) -> list[str]:
    """One line per run of an experiment whose verdicts differ between the columns, with the
    verdict's reason where the ledger has it (what to look at first)."""
    lines = []
    for name in names:
        seen = {c[name] for c in cols.values() if name in c}
        if len(seen) <= 1:
            continue
        for col, verdicts in cols.items():
            if name in verdicts:
                why = reasons.get(col, {}).get(name) or verdicts[name]
                lines.append(f"differs: {name} [{col}] {why}")
    return lines


def run(args: argparse.Namespace) -> int:
    from mlchaos_orchestration.suite.receiver import WebhookReceiver

    t0 = time.monotonic()
    mark = uuid.uuid4().hex[:12]
    root = Path(tempfile.mkdtemp(prefix="mlchaos-distributed-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLCHAOS_"))}
    ds = example_ds()
    file = str(Path(args.file).resolve())
    names = _names(file, args.experiments)
    weekly_names = [n for n in args.weekly.split(",") if n in names]
    stacks: list = []
    drills: Any = None
    af_verdicts: dict[str, str] = {}
    dg_verdicts: dict[str, str] = {}
    weekly_verdicts: dict[str, str] = {}
    inproc_af: dict[str, str] = {}
    inproc_dg: dict[str, str] = {}
    reasons: dict[str, dict[str, str]] = {}
    interrupted = False
    alerts = failed = 0
    try:
        with WebhookReceiver() as hook, Backends(root) as backends:
            _say(f"PostgreSQL :{backends.pg.port}, Redis :{backends.redis.port}, "
                 f"S3 {backends.s3.endpoint_url}; work dir {root}", t0)  # fmt: skip
            os.environ.update(backends.env("airflow"))  # the REST runner reads this ledger
            common = {
                f: {
                    **base,
                    **backends.env(f),
                    "MLCHAOS_EXPERIMENTS_FILE": file,
                    "MLCHAOS_ALERT_WEBHOOK_URL": hook.url,
                }
                for f in ("airflow", "dagster")
            }
            same = {"MLCHAOS_ALERT_WEBHOOK_URL": hook.url, MARK: mark}  # as the stacks get
            refs = {
                o: start_reference(backends, o, file, f"inprocess-{o}-{mark}", ds, same)
                for o in ("airflow", "dagster")
            }
            # the daemon first: its schedules queue the runs while Airflow starts
            dg_cfg = backends.example("dagster-daemon", ds, s3=False)
            weekly = dagster_daemon.weekly_file(root, file, weekly_names)
            dg_env = {**common["dagster"], **dg_cfg.export()}
            dd = dagster_daemon.start(backends, dg_env, mark, names, weekly)
            stacks.append(dd.group)
            _say("dagster-daemon started (PostgreSQL instance, queued runs)", t0)
            af_cfg = backends.example("airflow-celery", ds, s3=True)
            # tasks of one run hand data over through S3, not a worker's disk
            staging = {"MLCHAOS_STAGING_URL": "s3://airflow-celery/staging"}
            af_env = {**common["airflow"], **af_cfg.export(), **staging}
            af = airflow_celery.start(backends, af_env, mark)
            stacks.append(af.group)
            _say(f"Airflow (CeleryExecutor, 2 workers) ready at {af.url}", t0)
            for o, proc in refs.items():
                if proc.wait(timeout=900):
                    _say(f"in-process {o} worker exited {proc.returncode}:\n"
                         f"{log_tail(backends, o)}", t0)  # fmt: skip
            _say("in-process matrices done (dag.test / execute_in_process)", t0)
            af_verdicts = airflow_celery.run_matrix(af, file, f"celery-{mark}", ds, names)
            _say(f"airflow-celery: {len(af_verdicts)} runs done", t0)
            if not args.no_drills:
                drills = _drills(af, t0)
            af.group.stop()
            dg_verdicts = dagster_daemon.wait_matrix(dd, len(names), timeout_s=1000)
            _say(f"dagster-daemon: {len(dg_verdicts)} chaos runs finished", t0)
            weekly_run = dagster_daemon.wait_weekly(dd, timeout_s=900)
            if weekly_run is not None:
                weekly_verdicts = verdicts_of_suite(
                    backends.ledgers["dagster"], f"dagster-{weekly_run.run_id}"
                )
            failed = dagster_daemon.failed_chaos_runs(dd)
            time.sleep(2)
            alerts = dagster_daemon.sensor_alerts(hook.requests)
            dd.group.stop()
            inproc_af = verdicts_of_suite(backends.ledgers["airflow"], f"inprocess-airflow-{mark}")
            inproc_dg = verdicts_of_suite(backends.ledgers["dagster"], f"inprocess-dagster-{mark}")
            reasons = {  # printed for the experiments whose verdicts differ
                "in-process airflow": reasons_of_suite(
                    backends.ledgers["airflow"], f"inprocess-airflow-{mark}"
                ),
                "airflow-celery": reasons_of_suite(backends.ledgers["airflow"], f"celery-{mark}"),
                "in-process dagster": reasons_of_suite(
                    backends.ledgers["dagster"], f"inprocess-dagster-{mark}"
                ),
            }
    except KeyboardInterrupt:  # SIGINT, or SIGTERM from `timeout`: tear down, report what ran
        interrupted = True
        _say("interrupted: tearing everything down; the table shows what finished", t0)
    finally:
        for group in stacks:
            group.stop()
        strays = sweep(mark)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    cols = {
        "in-process airflow": inproc_af,
        "airflow-celery": af_verdicts,
        "in-process dagster": inproc_dg,
        "dagster weekly run (daemon)": weekly_verdicts,
        "dagster multiprocess (daemon)": dg_verdicts,
    }
    print(_table(names, cols))
    for line in _differences(names, cols, reasons):
        print(line)
    equal = (
        all(af_verdicts.get(n) == inproc_af.get(n) for n in names)
        and all(dg_verdicts.get(n) == inproc_dg.get(n) for n in names)
        and all(weekly_verdicts.get(n) == inproc_dg.get(n) for n in weekly_names)
        and set(weekly_names) <= set(weekly_verdicts)
        and set(names) <= set(inproc_af)
        and set(names) <= set(inproc_dg)
    )
    print(f"dagster-daemon: the schedule launched {len(dg_verdicts)} multiprocess chaos runs by "
          f"tag (the whole matrix); the weekly tick ran {len(weekly_verdicts)} experiments in its "
          f"run ({', '.join(weekly_names)}); sensor alerts received: {alerts}, failed chaos runs: "
          f"{failed}")  # fmt: skip
    print(f"stray processes after teardown: {len(strays)}; total {time.monotonic() - t0:.0f} s")
    if drills is not None:
        print(f"abort drill: last injected failure {drills.abort_s} s after `mlchaos abort`; "
              f"kill drill: {drills.killed or '-'} SIGKILLed mid-task (column dropped), restored: "
              f"{drills.restored_by or 'NOBODY'}, feature table identical: "
              f"{'yes' if drills.table_identical else 'no'}")  # fmt: skip
    alerted = alerts >= failed and (failed > 0 or "caught" not in dg_verdicts.values())
    equal = equal and not interrupted
    ok = equal and alerted and not strays and (drills is None or drills.ok())
    print(
        f"distributed: airflow-celery {len(af_verdicts)} runs, dagster-daemon "
        f"{len(dg_verdicts) + len(weekly_verdicts)} runs, verdicts equal to in-process: "
        f"{'yes' if equal else 'no'}"
    )
    return 0 if ok else 1


def _interrupt_on_sigterm() -> None:
    """``timeout`` sends SIGTERM: unwind like Ctrl-C, so the stacks are torn down and reported."""
    import signal

    def _raise(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


if __name__ == "__main__":
    _interrupt_on_sigterm()
    sys.exit(run(_parse(sys.argv[1:])))
