"""Airflow DAG ``mlchaos_probe`` of ``make distributed``'s fault drills: one task queries the
feature database every 0.1 s for ``conf["probe_s"]`` seconds and logs each outcome (time, ok,
AIRFLOW_HOME of the worker) to the ``probe`` table of ``$MLCHAOS_PROBE_DSN`` - so the driver sees
when a connector fault starts and stops biting inside a Celery worker."""

from __future__ import annotations

import datetime as dt
import os
import time

from airflow.sdk import DAG, get_current_context, task  # noqa: TID253 - a DAG file

from mlchaos_orchestration.airflow import add_chaos

DAG_ID = "mlchaos_probe"
TABLE = "CREATE TABLE IF NOT EXISTS probe (run_id text, ts double precision, ok boolean, home text)"


@task
def probe() -> int:
    import psycopg2
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    ctx = get_current_context()
    run_id, conf = ctx["run_id"], ctx["dag_run"].conf or {}
    engine = sa.create_engine(os.environ["MLCHAOS_FEATURES_URL"], poolclass=NullPool)
    log = psycopg2.connect(os.environ["MLCHAOS_PROBE_DSN"])
    log.autocommit = True
    end, n = time.time() + float(conf.get("probe_s", 1)), 0
    with log.cursor() as cur:
        cur.execute(TABLE)
        while time.time() < end:
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                ok = True
            except Exception:  # noqa: BLE001 - the injected connector failure, logged
                ok = False
            cur.execute(
                "INSERT INTO probe VALUES (%s, %s, %s, %s)",
                (run_id, time.time(), ok, os.environ.get("AIRFLOW_HOME", "")),
            )
            n += 1
            time.sleep(0.1)
    log.close()
    return n


@task
def done(n: int) -> int:
    return n


with DAG(DAG_ID, schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False) as dag:
    done(probe())  # type: ignore[arg-type]  # an XComArg at parse time

add_chaos(dag, before="probe", consumer="done")
