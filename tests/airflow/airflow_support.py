"""Helpers shared by the Airflow tests (importable: tests/airflow/conftest.py puts this folder on
sys.path)."""

from __future__ import annotations

import subprocess
import sys


def python_last_line(code: str, env: dict[str, str], timeout: float = 300) -> str:
    """Run ``code`` in a fresh interpreter with ``env``; its last stdout line (asserts exit 0)."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]
