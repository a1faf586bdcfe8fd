"""The in-process verdicts to compare with: the suite's own workers (``dag.test`` for Airflow,
``execute_in_process`` for Dagster), each in a subprocess on its own copy of the example data,
writing to the shared ledger."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.testing.distributed.backends import Backends


def start_reference(
    backends: Backends,
    orchestrator: str,
    experiments_file: str,
    suite_id: str,
    ds: str,
    extra_env: dict[str, str],
) -> subprocess.Popen[bytes]:
    """Start ``python -m mlchaos_orchestration.suite.run <orchestrator> FILE SUITE_ID`` with the
    shared backends' environment plus ``extra_env`` (alert webhook, stack marker)."""
    root = backends.root / f"inprocess-{orchestrator}"
    cfg = backends.example(f"inprocess-{orchestrator}", ds, s3=False)
    env = {
        **_base_env(),
        **backends.env(orchestrator),
        **cfg.export(),
        "MLCHAOS_HOME": str(root / "mlchaos"),
        "MLCHAOS_EXPERIMENTS_FILE": experiments_file,
        "MLCHAOS_REPORTS_DIR": str(root / "reports"),
        **extra_env,
    }
    root.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mlchaos_orchestration.suite.run", orchestrator]
    with (root / "worker.log").open("wb") as log:
        return subprocess.Popen(
            [*cmd, experiments_file, suite_id],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def verdicts_of_suite(ledger_url: str, suite_id: str) -> dict[str, str]:
    """experiment -> verdict of the ledger runs of ``suite_id``."""
    runs = Ledger(ledger_url).list_runs(suite_id=suite_id, limit=1000)
    return {r["experiment"]: str(r.get("verdict") or "none") for r in reversed(runs)}


def reasons_of_suite(ledger_url: str, suite_id: str) -> dict[str, str]:
    """experiment -> the verdict's one-line reason, for the runs of ``suite_id``."""
    out = {}
    for r in reversed(Ledger(ledger_url).list_runs(suite_id=suite_id, limit=1000)):
        detail = r.get("verdict_detail") or {}
        out[r["experiment"]] = f"{detail.get('verdict') or 'none'}: {detail.get('reason') or '-'}"
    return out


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLCHAOS_"))}


def log_tail(backends: Backends, orchestrator: str, lines: int = 15) -> str:
    path = Path(backends.root / f"inprocess-{orchestrator}" / "worker.log")
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
