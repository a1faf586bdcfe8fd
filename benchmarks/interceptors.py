"""Cost of the connector-fault interceptors, measured side by side in one run.

Loops: a tight SQLAlchemy query loop on a SQLite file and on a real PostgreSQL server, and a boto3
put/get loop on a real moto S3 server (all on loopback, :mod:`mlchaos_orchestration.testing`).
Each is timed in many short blocks, alternately without and with a configuration (A B, B A,
A B, ...), and the cost is the median of the per-pair ratios B/A, so machine noise hits both
sides alike; the spread of those ratios (25th-75th percentile) and the ratio of the totals are
printed beside it. Every block is timed on two clocks: this process's CPU time (all its threads,
so the ledger watch thread counts; what other processes do on a shared machine does not) - the
figure used - and wall time, printed for comparison. The CPU figure is the stricter one for the
PostgreSQL and S3 loops: the server's share of each call is not in the denominator. Each block
starts with an untimed warm-up of a tenth of its calls. Configurations:

* ``noise``: B is the very same as A - the method's noise floor, for reading the others.
* ``armed``: the plugin with no fault active for this process, at its most expensive: the ledger
  watch (:class:`~mlchaos_orchestration.interceptors.ledger_sync.LedgerHooks`, a thread polling
  the ledger, which the Dagster IO manager keeps around each load / store of a chaos run) following
  a run whose ledger holds no connector fault. Outside a chaos run nothing at all is installed,
  and Airflow's listener and the runner start no watch when no lease has a hook. Its blocks last
  at least two watch intervals, so every B block pays for its ledger polls.
* ``elsewhere``: a connector fault active in this process on ANOTHER database / bucket: its hook
  is installed but targets nothing this loop uses.
* ``active``: a fault on this very database / bucket with ``rate`` 0 - every statement / request
  is intercepted and rolled, none fails, no latency: the interception's own cost per call.

    python benchmarks/interceptors.py [--pairs 30] [--block-ms 50] [--armed-pairs 12]

Last line: ``dormant overhead: <pct>% (worst of sqlite/postgres/s3), active <us> us/statement``
(dormant = worst median of ``armed`` and ``elsewhere``; active = worst of SQLite and PostgreSQL).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mlchaos_orchestration import interceptors
from mlchaos_orchestration.testing import MotoS3Server, PostgresServer

Loop = Callable[[int], None]  # runs n statements / requests
Arm = Callable[[], AbstractContextManager[Any]]


@dataclass
class Backend:
    name: str
    make_loop: Callable[[], Loop]  # untimed set-up per block (an S3 task makes a new client)
    here: dict[str, Any]  # a fault spec on what the loop uses
    elsewhere: dict[str, Any]  # the same kind of fault on something else
    min_calls: int = 300  # per block, whatever the block length
    n: int = 0  # calls per block, calibrated
    per_call_s: float = 0.0  # wall seconds per call, calibrated


@dataclass
class Pairs:
    """Block times without (``plain``) and with (``armed``) a configuration, one clock."""

    plain: list[float]
    armed: list[float]

    @property
    def ratios(self) -> list[float]:
        return [b / a for a, b in zip(self.plain, self.armed, strict=True)]

    def pct(self) -> float:
        return (statistics.median(self.ratios) - 1) * 100

    def spread(self) -> tuple[float, float]:
        q = statistics.quantiles(self.ratios, n=4)
        return (q[0] - 1) * 100, (q[2] - 1) * 100

    def total_pct(self) -> float:
        return (sum(self.armed) / sum(self.plain) - 1) * 100

    def us_per_call(self, n: int) -> float:
        diffs = [b - a for a, b in zip(self.plain, self.armed, strict=True)]
        return statistics.median(diffs) / n * 1e6


def timed(loop: Loop, n: int) -> tuple[float, float]:
    """(process CPU seconds, wall seconds) of ``n`` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    loop(n)
    return time.process_time() - cpu, time.perf_counter() - wall


def calibrate(backend: Backend, block_s: float) -> None:
    loop = backend.make_loop()
    loop(20)  # warm connections and caches
    backend.per_call_s = min(timed(loop, 50)[1] for _ in range(3)) / 50
    backend.n = max(backend.min_calls, int(block_s / backend.per_call_s))


def measure(backend: Backend, arm: Arm, pairs: int, n: int) -> tuple[Pairs, Pairs]:
    """``pairs`` A/B pairs (order alternating) on the (CPU, wall) clocks; the loop is made and
    warmed inside the configuration, untimed."""
    cpu, wall = Pairs([], []), Pairs([], [])
    for i in range(pairs):
        for with_arm in (False, True) if i % 2 == 0 else (True, False):
            with arm() if with_arm else nullcontext():
                loop = backend.make_loop()
                loop(max(2, n // 10))
                c, w = timed(loop, n)
            for clock, seconds in ((cpu, c), (wall, w)):
                (clock.armed if with_arm else clock.plain).append(seconds)
    return cpu, wall


def sql_loop(url: str) -> Callable[[], Loop]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)  # made before any hook: reached like an existing engine
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS t (id integer, v text)"))
        conn.execute(sa.text("DELETE FROM t"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, 'x')"))
    query = sa.text("SELECT v FROM t WHERE id = 1")
    conn = engine.connect()

    def loop(n: int) -> None:
        for _ in range(n):
            conn.execute(query).fetchall()

    return lambda: loop


def s3_loop(endpoint: str) -> Callable[[], Loop]:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
    )
    setup = session.client("s3", endpoint_url=endpoint)
    setup.create_bucket(Bucket="bench")
    for i in range(10):
        setup.put_object(Bucket="bench", Key=f"k{i}", Body=b"x" * 100)

    def make() -> Loop:
        client = session.client("s3", endpoint_url=endpoint)  # carries the hooks installed now

        def loop(n: int) -> None:
            for i in range(n):
                key = f"k{i % 10}"
                if i % 2:
                    client.get_object(Bucket="bench", Key=key)["Body"].read()
                else:
                    client.put_object(Bucket="bench", Key=key, Body=b"x" * 100)

        return loop

    return make


@contextmanager
def hook(spec: dict[str, Any]) -> Iterator[None]:
    with interceptors.installed([spec]):
        yield


def ledger_watch(tmp: Path) -> Arm:
    """The plugin's per-step ledger watch for a run with no connector fault (no hook results)."""
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.interceptors.ledger_sync import LedgerHooks

    ledger = Ledger(f"sqlite:///{tmp / 'ledger.db'}")
    run_id = ledger.start_run("bench", pipeline="bench")

    @contextmanager
    def arm() -> Iterator[None]:
        with LedgerHooks(ledger, run_id=run_id) as watch:
            assert not watch.handles and not interceptors.active()
            yield

    return arm


def report(kind: str, backend: Backend, clocks: tuple[Pairs, Pairs], n: int) -> Pairs:
    """Print one configuration's figures on both clocks; return the CPU pairs."""
    for clock, pairs in zip(("cpu", "wall"), clocks, strict=True):
        low, high = pairs.spread()
        per_call = statistics.median(pairs.plain) / n * 1e6
        print(
            f"{kind:<9} {backend.name:<8} {clock:<4} median {pairs.pct():+6.2f}%  "
            f"IQR [{low:+6.2f}%, {high:+6.2f}%]  totals {pairs.total_pct():+6.2f}%  "
            f"({len(pairs.plain)} pairs x {n} calls, {per_call:.1f} us/call)"
        )
    return clocks[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=30, help="A/B pairs per short measurement")
    parser.add_argument("--block-ms", type=float, default=50.0, help="length of a short block")
    parser.add_argument("--armed-pairs", type=int, default=12, help="A/B pairs for 'armed'")
    args = parser.parse_args()
    dormant: dict[str, float] = {}
    active: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        PostgresServer() as pg,
        MotoS3Server() as s3,
    ):
        tmp = Path(tmpdir)
        sqlite_url = f"sqlite:///{tmp / 'bench.db'}"
        pg_url = pg.create_database()
        other_db = f"sqlite:///{tmp / 'other.db'}"
        backends = [
            Backend(
                "sqlite",
                sql_loop(sqlite_url),
                {"kind": "sql_failure", "url": sqlite_url, "rate": 0.0},
                {"kind": "sql_failure", "url": other_db, "rate": 1.0},
            ),
            Backend(
                "postgres",
                sql_loop(pg_url),
                {"kind": "sql_failure", "url": pg_url, "rate": 0.0},
                {"kind": "sql_failure", "url": other_db, "rate": 1.0},
            ),
            Backend(
                "s3",
                s3_loop(s3.endpoint_url),
                {"kind": "s3_failure", "bucket": "bench", "rate": 0.0},
                {"kind": "s3_failure", "bucket": "elsewhere", "rate": 1.0},
                min_calls=60,
            ),
        ]
        watch = ledger_watch(tmp)
        from mlchaos_orchestration.interceptors.ledger_sync import LedgerHooks

        armed_s = 2.5 * LedgerHooks(None).interval_s  # >= 2 ledger polls per armed block
        for backend in backends:
            calibrate(backend, args.block_ms / 1000)
            n = backend.n
            report("noise", backend, measure(backend, nullcontext, args.pairs, n), n)
            armed_n = max(n, int(armed_s / backend.per_call_s))
            pairs = report(
                "armed", backend, measure(backend, watch, args.armed_pairs, armed_n), armed_n
            )
            worst = pairs.pct()
            clocks = measure(backend, partial(hook, backend.elsewhere), args.pairs, n)
            dormant[backend.name] = max(worst, report("elsewhere", backend, clocks, n).pct())
            clocks = measure(backend, partial(hook, backend.here), args.pairs, n)
            active[backend.name] = max(0.0, report("active", backend, clocks, n).us_per_call(n))
            print(f"active   {backend.name:<8} {active[backend.name]:.2f} us per call (rate 0)")
        print(f"install + remove of a SQL hook (one heap walk): {install_ms(other_db):.1f} ms")
    worst_name = max(dormant, key=lambda k: dormant[k])
    print(f"worst dormant: {worst_name}; uptime load: {load()}")
    print(
        f"dormant overhead: {dormant[worst_name]:.1f}% (worst of sqlite/postgres/s3), "
        f"active {max(active['sqlite'], active['postgres']):.1f} us/statement"
    )


def install_ms(url: str) -> float:
    """Median wall time of installing and removing a SQL hook (its engines found by a heap walk)."""
    took = []
    for _ in range(5):
        start = time.perf_counter()
        interceptors.install({"kind": "sql_failure", "url": url}).remove()
        took.append(time.perf_counter() - start)
    return statistics.median(took) * 1000


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


if __name__ == "__main__":
    main()
