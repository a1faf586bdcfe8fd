"""Short version of benchmarks/ledger_load.py: 8 writer processes on SQLite (WAL) and
PostgreSQL; every event written is stored (the 30 s version is the benchmark itself)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ledger_load.py"


def test_eight_writers_lose_no_events_on_sqlite_and_postgres(pg_url: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "3", "--processes", "8", "--pg-url", pg_url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {
        m[0]: (int(m[1]), int(m[2]), int(m[3]), int(m[4]))
        for m in re.findall(
            r"^(sqlite|postgresql)\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", done.stdout, re.M
        )
    }
    assert set(rows) == {"sqlite", "postgresql"}
    for backend, (written, stored, lost, errors) in rows.items():
        assert written > 0 and written == stored and lost == 0 and errors == 0, backend
    assert done.stdout.strip().splitlines()[-1] == "lost: 0"
