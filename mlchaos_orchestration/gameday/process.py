"""A game day run from an orchestrator task: ``mlchaos gameday`` in a child process (Locust's
gevent never meets Airflow's or Dagster's process), its outcome read back from its report."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlchaos_orchestration.errors import MlchaosError


class GameDayFailed(MlchaosError):
    """The game day did not produce its verdicts (bad file, a server that did not start)."""


@dataclass
class GameDayRun:
    """What a task reports: the summary line, the verdicts and where the post-mortem is."""

    last_line: str
    verdicts: dict[str, str]
    postmortem: Path
    result: dict[str, Any]


def run_gameday_process(
    file: str | Path,
    reports_dir: str | Path,
    *,
    experiments: list[str] | None = None,
    prometheus: bool = True,
    peak_rps: float = 0.0,
    timeout_s: float = 1800.0,
) -> GameDayRun:
    """Run the game day of ``file``; raise :class:`GameDayFailed` with its last output lines
    when it produced no verdicts."""
    cmd = [sys.executable, "-m", "mlchaos_orchestration.cli", "gameday", str(file),
           "--reports-dir", str(reports_dir)]  # fmt: skip
    for name in experiments or []:
        cmd += ["--experiment", name]
    cmd.append("--prometheus" if prometheus else "--no-prometheus")
    if peak_rps:
        cmd += ["--peak", str(peak_rps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    lines = proc.stdout.strip().splitlines()
    html = next((ln.split(": ", 1)[1] for ln in lines if ln.startswith("post-mortem: ")), None)
    if proc.returncode != 0 or html is None:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise GameDayFailed(f"game day failed (exit {proc.returncode}):\n{tail}")
    postmortem = Path(html)
    result = json.loads(postmortem.with_name("gameday.json").read_text())
    ran = [*result["outcomes"], *result.get("drift", [])]  # kind: drift experiments too
    verdicts = {o["name"]: o["verdict"] for o in ran}
    return GameDayRun(lines[-1], verdicts, postmortem, result)
