"""``mlchaos gameday`` end to end on a short file: real Redis, uvicorn, Locust and (if
installed) Prometheus; the last line, the post-mortem and no process left behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psutil

MLCHAOS = str(Path(sys.executable).with_name("mlchaos"))
SHORT = """
gameday:
  slo_ms: 200
  steady_state:
    - {name: p99_latency, kind: latency_p99, max: 200, window_s: 2}
    - {name: error_ratio, kind: error_ratio, max: 0.01, window_s: 2}
    - {name: fallback_ratio, kind: fallback_ratio, role: info, window_s: 2}
  stop_conditions: {probe: p99_latency, consecutive: 3}
  before_s: 1
  after_s: 1
experiments:
  - name: slow-store
    mitigation: true
    method:
      - {action: load, rate: 150%, duration_s: 9}
      - {action: network, target: redis, kind: latency, latency_ms: 100, jitter_ms: 20,
         offset_s: 3, duration_s: 4}
"""
LAST = re.compile(
    r"^gameday: (held|degraded_gracefully|breached|aborted) p99=\d+ ms at 15 rps "
    r"\(150% of peak 10\); kill switch (fired|not fired)$"
)


def _ours(root: Path) -> list[str]:
    """Processes started for this game day: their command line or working folder is under
    ``root`` (other tests may run their own API in parallel)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(root) in cmd or str(root) in (proc.info["cwd"] or ""):
            found.append(cmd)
    return found


def test_gameday_command_writes_postmortem_and_leaves_nothing_running(tmp_path: Path) -> None:
    spec = tmp_path / "gd.yaml"
    spec.write_text(SHORT)
    proc = subprocess.run(
        [MLCHAOS, "gameday", str(spec), "--peak", "10", "--reports-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**__import__("os").environ, "MLCHAOS_HOME": str(tmp_path / "home")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert LAST.match(last), last
    assert "slow-store: degraded_gracefully" in proc.stdout, proc.stdout
    html = next((tmp_path / "r").glob("*/postmortem.html")).read_text()
    assert "slow-store" in html and "Action items" in html
    assert _ours(tmp_path) == []


def test_gameday_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "gd.yaml"
    spec.write_text("gameday: {steady_state: []}\nexperiments: []\n")
    proc = subprocess.run([MLCHAOS, "gameday", str(spec)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "experiments" in proc.stderr and "Traceback" not in proc.stderr
