"""Cleanup guardian for throwaway test servers.

Started by :mod:`mlchaos_orchestration.testing.servers` in its own session with a JSON plan as
its only argument. It blocks on stdin; when the owner writes ``stop`` or dies (any way, even
SIGKILL, closes the pipe), it runs the plan: signal processes, run stop commands, delete dirs.
Keeping every cleanup step here gives one code path for normal exit and for interruption.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def _terminate(pids: list[int], grace_s: float = 5.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in filter(pid_alive, pids):
        os.kill(pid, signal.SIGKILL)


def run_plan(plan: dict) -> None:
    """Execute a cleanup plan: ``terminate`` pids, run ``commands``, remove ``rmtree`` dirs."""
    _terminate([int(p) for p in plan.get("terminate", [])])
    for cmd in plan.get("commands", []):
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    for path in plan.get("rmtree", []):
        shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    plan = json.loads(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdin.readline()  # "stop" from the owner, or EOF when the owner is gone
    run_plan(plan)


if __name__ == "__main__":
    main()
