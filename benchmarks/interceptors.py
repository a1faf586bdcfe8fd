"""Cost of the connector-fault interceptors, measured side by side in one run.

* dormant: an interceptor is installed for ANOTHER database / bucket (a fault somewhere else in
  the deployment), this process's own engine or client is not targeted - the listener runs,
  matches nothing and gets out of the way. Compared with no interceptor at all, on a tight
  SQLAlchemy query loop (SQLite file, real PostgreSQL) and a boto3 get/put loop on a real moto
  S3 server.
* active: an interceptor targeting this very database with ``rate`` 0 (it rolls for every
  statement but never fails): its per-statement cost, injected latency excluded.

Rounds alternate (plain, with, plain, with, ...) and the overhead is the median of the paired
ratios, so machine noise hits both alike.

    python benchmarks/interceptors.py [--statements 3000] [--rounds 7]

Last line: ``dormant overhead: <pct>% (worst of sqlite/postgres/s3), active <us> us/statement``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlchaos_orchestration import interceptors
from mlchaos_orchestration.testing import MotoS3Server, PostgresServer


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(plain: Callable[[], None], spec: dict, rounds: int) -> tuple[float, float]:
    """(median ratio with/without, median seconds saved per call of the 'with' variant)."""
    ratios, diffs = [], []
    plain()  # warm caches, connections, the matcher cache
    for _ in range(rounds):
        base = timed(plain)
        with interceptors.installed([spec]):
            plain()  # first call after install fills the engine-match cache
            other = timed(plain)
        ratios.append(other / base)
        diffs.append(other - base)
    return statistics.median(ratios), statistics.median(diffs)


def sql_loop(url: str, n: int) -> Callable[[], None]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS t (id integer, v text)"))
        conn.execute(sa.text("DELETE FROM t"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, 'x')"))
    query = sa.text("SELECT v FROM t WHERE id = 1")
    conn = engine.connect()

    def loop() -> None:
        for _ in range(n):
            conn.execute(query).fetchall()

    return loop


def s3_loop(endpoint: str, n: int) -> Callable[[], None]:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
    )
    session.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")

    def loop() -> None:
        # a client per round, as a task makes one: created while an interceptor is installed,
        # it carries the interceptor's hook (botocore's create_client is wrapped)
        client = session.client("s3", endpoint_url=endpoint)
        for i in range(n):
            client.put_object(Bucket="bench", Key=f"k{i % 10}", Body=b"x" * 100)
            client.get_object(Bucket="bench", Key=f"k{i % 10}")["Body"].read()

    return loop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--statements", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    n = args.statements
    rows: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as pg, MotoS3Server() as s3:
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        pg_url = pg.create_database()
        other_db = f"sqlite:///{Path(tmp) / 'other.db'}"
        cases = {
            "sqlite": (sql_loop(sqlite_url, n), {"kind": "sql_failure", "url": other_db}),
            "postgres": (sql_loop(pg_url, n), {"kind": "sql_failure", "url": other_db}),
            "s3": (
                s3_loop(s3.endpoint_url, n // 10),
                {"kind": "s3_failure", "bucket": "elsewhere", "rate": 1.0},
            ),
        }
        for name, (loop, spec) in cases.items():
            ratio, _ = paired(loop, spec, args.rounds)
            rows[name] = (ratio - 1) * 100
            print(f"dormant {name:<9} {rows[name]:+6.2f}%")
        loop = sql_loop(sqlite_url, n)
        _, diff = paired(loop, {"kind": "sql_failure", "url": sqlite_url, "rate": 0.0}, args.rounds)
        active_us = max(0.0, diff / n * 1e6)
        print(f"active sqlite: {active_us:.2f} us per statement (rate 0: rolled, never failed)")
    worst = max(rows.values())
    print(
        f"dormant overhead: {worst:.1f}% (worst of sqlite/postgres/s3), "
        f"active {active_us:.1f} us/statement"
    )


if __name__ == "__main__":
    main()
