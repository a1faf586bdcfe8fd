"""Processes of one distributed stack: one process group, a guardian that kills the group if the
driver dies, and a sweep for anything that escaped the group (tagged through its environment)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlchaos_orchestration.testing.servers import _Guardian

#: every process of a stack carries this variable (value: the stack's id) in its environment
MARK = "MLCHAOS_DISTRIBUTED_STACK"


@dataclass
class ProcessGroup:
    """Processes started into one process group, each in its own working directory with its own
    log; :meth:`stop` terminates the group (SIGTERM, then SIGKILL)."""

    name: str
    mark: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    dirs: dict[str, Path] = field(default_factory=dict)
    _guardian: _Guardian | None = None

    @property
    def pgid(self) -> int:
        return next(iter(self.procs.values())).pid

    def start(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        """Start ``cmd`` in ``cwd`` (created), logging to ``cwd/<name>.log``."""
        cwd.mkdir(parents=True, exist_ok=True)
        with (cwd / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env={**env, MARK: self.mark},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=self.pgid if self.procs else 0,
            )
        self.procs[name], self.dirs[name] = proc, cwd
        if self._guardian is None:
            kill = f"kill -TERM -{proc.pid} 2>/dev/null && {{ sleep 5; kill -KILL -{proc.pid}; }}"
            self._guardian = _Guardian({"commands": [["/bin/sh", "-c", kill + "; true"]]})

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name}: {name} exited ({proc.returncode})\n{self.logs()}")

    def kill(self, name: str) -> None:
        """SIGKILL one process (a crash, as on a lost host)."""
        self.procs[name].kill()
        self.procs[name].wait(timeout=10)

    def stop(self, grace_s: float = 10.0) -> None:
        if not self.procs:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace_s
            for proc in self.procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        if self._guardian is not None:
            self._guardian.release()
            self._guardian = None

    def logs(self, lines: int = 20) -> str:
        out = []
        for name, cwd in self.dirs.items():
            path = cwd / f"{name}.log"
            tail = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            out.append(f"--- {self.name}/{name}\n" + "\n".join(tail))
        return "\n".join(out)


def stray_processes(mark: str) -> list[int]:
    """Pids of live processes whose environment carries ``MARK=mark``."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def sweep(mark: str) -> list[int]:
    """SIGKILL every process still carrying ``mark``; the pids that were found."""
    found = stray_processes(mark)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return found
