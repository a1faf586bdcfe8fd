"""``late`` outages come back at ``delay_s`` by themselves: the process that applied the fault
restores it on a timer (nobody calls recover); if that process is gone first, the ledger's
restore time is the fallback (``recover`` restores it as a late fault, on time or later)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.session import recover
from mlchaos_orchestration.settings import get_settings
from mlchaos_orchestration.testing.torture import local_snapshot

APPLY_LATE = """
import json, sys, time
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec
from mlchaos_orchestration.core.session import apply_fault
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.catalog import get_fault_class

target, delay, stay = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
fault = get_fault_class("upstream_outage").model_validate(
    {"target": target, "mode": "late", "delay_s": delay}
)
applied = apply_fault(Ledger(), fault, ApplyContext(seed=1), run_id="late", safety=SafetySpec())
print(json.dumps({"lease": applied.lease.id, "at": time.time()}), flush=True)
time.sleep(stay)  # alive, doing nothing else
"""


def _start(target: Path, delay: float, stay: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", APPLY_LATE, str(target), str(delay), str(stay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=30)
        raise AssertionError(f"apply failed: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line)


def _data(tmp_path: Path, monkeypatch: object) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "events.csv").write_text("id,amount\n1,2.5\n2,3.5\n")
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", str(data))  # type: ignore[attr-defined]
    return data


def test_late_is_back_at_delay_s_without_anyone_calling_recover(
    tmp_path: Path, mlchaos_home: Path, monkeypatch: object
) -> None:
    data = _data(tmp_path, monkeypatch)
    target = data / "events.csv"
    before = local_snapshot(data)
    proc, applied = _start(target, delay=1.0, stay=30)
    try:
        assert not target.exists(), "late: the source is away until delay_s"
        deadline = applied["at"] + 1.5
        while not target.exists() and time.time() < deadline:
            time.sleep(0.02)
        back_after = time.time() - applied["at"]
        assert target.exists(), f"not back {back_after:.2f} s after apply"
        lease = Ledger().get_lease(applied["lease"])
        for _ in range(100):  # the restore writes the file, then releases the lease
            if lease is not None and lease.state == "restored":
                break
            time.sleep(0.02)
            lease = Ledger().get_lease(applied["lease"])
        assert lease is not None and lease.state == "restored"
        assert lease.note == "late fault restored on time"
        assert local_snapshot(data) == before
        assert proc.poll() is None, "the applying process was alive all along"
        print(f"late restored {back_after:.2f} s after apply (delay_s=1)")
        assert back_after >= 0.9
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_late_falls_back_to_recover_when_the_applying_process_is_gone(
    tmp_path: Path, mlchaos_home: Path, monkeypatch: object
) -> None:
    data = _data(tmp_path, monkeypatch)
    target = data / "events.csv"
    before = local_snapshot(data)
    proc, applied = _start(target, delay=1.0, stay=0)
    proc.wait(timeout=30)  # exited before delay_s: its timer died with it
    time.sleep(max(0.0, applied["at"] + 1.3 - time.time()))
    assert not target.exists(), "nothing restores it without the applying process or a recover"
    ledger = Ledger()
    outcomes = recover(ledger, settings=get_settings())
    assert [o.lease_id for o in outcomes] == [applied["lease"]] and outcomes[0].restored
    lease = ledger.get_lease(applied["lease"])
    assert lease is not None and lease.note == "late fault restored on time"
    assert local_snapshot(data) == before
