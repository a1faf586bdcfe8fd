"""Ledger under load: 8 processes append events for N seconds to SQLite (WAL) and to PostgreSQL,
side by side; prints events/s, write latency and that none were lost (written == stored).

    .venv/bin/python benchmarks/ledger_load.py [--seconds 30] [--processes 8] [--pg-url URL]

Without ``--pg-url`` a throwaway PostgreSQL server is started
(``mlchaos_orchestration.testing.servers.PostgresServer``). Last line:
``lost: <total lost over all backends>``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any


def writer(url: str, run_id: str, barrier: Any, seconds: float, out: Any) -> None:
    """Append events to ``run_id`` until the deadline; report (written, errors, latencies)."""
    from mlchaos_orchestration.core.ledger import Ledger

    ledger = Ledger(url)
    ledger.start_run("ledger-load", run_id=run_id, orchestrator="benchmark")
    barrier.wait()  # every writer starts together, once all have imported and connected
    deadline = time.time() + seconds
    written, errors, latencies = 0, 0, []
    while time.time() < deadline:
        began = time.perf_counter()
        try:
            ledger.record(run_id, "load", source="benchmark", seq=written)
        except Exception:  # noqa: BLE001 - counted, not written; the benchmark reports it
            errors += 1
            continue
        latencies.append(time.perf_counter() - began)
        written += 1
    out.put((run_id, written, errors, latencies))


def run_backend(url: str, processes: int, seconds: float) -> dict[str, Any]:
    """``processes`` writers for ``seconds`` against the ledger at ``url``; totals and losses."""
    from mlchaos_orchestration.core.ledger import Ledger, events

    ledger = Ledger(url)  # schema first, so writers race on events, not on the migration
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    barrier = ctx.Barrier(processes)
    stamp = f"{int(time.time() * 1000) % 10**9:09d}"
    procs = [
        ctx.Process(target=writer, args=(url, f"load{stamp}p{i}", barrier, seconds, out))
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    reports = [out.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    import sqlalchemy as sa

    run_ids = [r[0] for r in reports]
    with ledger.engine.connect() as conn:
        stored = conn.execute(
            sa.select(sa.func.count())
            .select_from(events)
            .where(events.c.run_id.in_(run_ids), events.c.kind == "load")
        ).scalar_one()
    latencies = sorted(lat for r in reports for lat in r[3])
    written = sum(r[1] for r in reports)
    return {
        "backend": sa.engine.make_url(url).get_backend_name(),
        "written": written,
        "stored": int(stored),
        "lost": written - int(stored),
        "errors": sum(r[2] for r in reports),
        "events_per_s": written / seconds,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--pg-url", default=None, help="existing PostgreSQL database URL")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        pg_url = args.pg_url
        if pg_url is None:
            from mlchaos_orchestration.testing.servers import PostgresServer

            pg_url = stack.enter_context(PostgresServer()).create_database()
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ledger-load-")))
        backends = [f"sqlite:///{folder / 'ledger.db'}", pg_url]
        print(f"{args.processes} processes x {args.seconds:g} s per backend")
        results = [run_backend(url, args.processes, args.seconds) for url in backends]
    print(
        f"{'backend':<12}{'events/s':>10}{'written':>10}{'stored':>10}{'lost':>6}"
        f"{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}"
    )
    for r in results:
        print(
            f"{r['backend']:<12}{r['events_per_s']:>10.0f}{r['written']:>10}{r['stored']:>10}"
            f"{r['lost']:>6}{r['errors']:>8}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
        )
    lost = sum(r["lost"] for r in results)
    print(f"lost: {lost}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
