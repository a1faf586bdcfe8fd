"""``import mlchaos_orchestration`` stays light: no pandas, Airflow, Dagster or GX."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_light() -> None:
    code = (
        "import sys, mlchaos_orchestration, mlchaos_orchestration.faults;"
        "mlchaos_orchestration.faults.registry();"
        "heavy = [m for m in ('pandas', 'airflow', 'dagster', 'great_expectations')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
