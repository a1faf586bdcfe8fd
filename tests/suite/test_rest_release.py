"""The REST runner starts the next experiment only once the previous run's faults are restored
(an Airflow DagRun turns terminal before the deployment's finishing code restores)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.suite.airflow_rest import _wait_released


def test_waits_for_the_runs_leases_then_returns(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    run = ledger.start_run("exp")
    target = Target.parse(str(tmp_path / "data.csv"))
    lease = ledger.acquire_lease(run_id=run, fault="f", targets=[target], spec={}, ttl_s=60)
    threading.Timer(0.4, ledger.set_lease_state, (lease.id, "restored")).start()
    start = time.monotonic()
    _wait_released(ledger, run, timeout_s=10)
    assert 0.35 <= time.monotonic() - start < 5
    assert ledger.live_leases(run) == []
    start = time.monotonic()
    _wait_released(ledger, run, timeout_s=10)  # nothing live: no wait
    assert time.monotonic() - start < 0.2


def test_gives_up_after_its_timeout(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    run = ledger.start_run("exp")
    target = Target.parse(str(tmp_path / "data.csv"))
    ledger.acquire_lease(run_id=run, fault="f", targets=[target], spec={}, ttl_s=60)
    start = time.monotonic()
    _wait_released(ledger, run, timeout_s=0.3)
    assert 0.3 <= time.monotonic() - start < 2
