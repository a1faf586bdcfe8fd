"""The game day's real servers on loopback, each a context manager in its own process group:
Redis (online features), the prediction API (uvicorn) and Prometheus (scraping the API every
second). ``stop()`` terminates the whole group and waits, so no process outlives the game day.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlchaos_orchestration.errors import MlchaosError

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(MlchaosError):
    """A game-day server could not be found or started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGTERM when the process that started it dies (Linux
    ``PR_SET_PDEATHSIG``), so a killed game day leaves no server behind."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not glibc: the stop() calls remain the clean-up
        pass


def spawn_group(
    cmd: list[str], log_path: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group, output appended to ``log_path``; it dies with
    the process that started it."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


def stop_group(proc: subprocess.Popen[bytes] | None, grace_s: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL after ``grace_s``; wait for it."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def http_get(url: str, timeout: float = 2.0) -> bytes:
    """GET ``url`` ignoring any ``*_proxy`` variables (loopback services)."""
    with _DIRECT.open(url, timeout=timeout) as resp:
        return bytes(resp.read())


class _Process:
    """A child process in its own session, logged to ``<dir>/<name>.log``."""

    name = "process"

    def __init__(self, workdir: Path | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"mlchaos-{self.name}-")).resolve()
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def _spawn(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)  # before the server is told to use it
        self.log_path.unlink(missing_ok=True)
        self.proc = spawn_group(cmd, self.log_path, cwd=self.workdir, env=env)

    def _wait_until(self, ready: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                if ready():
                    return
            except (OSError, urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-1500:] if self.log_path.exists() else ""
        code = self.proc.poll() if self.proc is not None else None
        self.stop()
        why = f"exited with code {code}" if code is not None else f"not ready in {timeout:.0f} s"
        raise StackError(f"{self.name} {why}:\n{tail.strip()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Terminate the process group (SIGTERM, then SIGKILL after 5 s) and wait."""
        proc, self.proc = self.proc, None
        stop_group(proc)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Any:
        return self.start()  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisServer(_Process):
    """A private ``redis-server`` (Debian's) on a free loopback port, no persistence."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError("redis-server not found: run scripts/bootstrap.sh --with-serving")
        self.port = free_port()
        self._spawn(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--protected-mode",
                "yes",
            ]
        )
        self._wait_until(self._ping, 15)
        return self

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")


class ApiServer(_Process):
    """The prediction API under uvicorn (one worker) on a free loopback port."""

    name = "api"

    def __init__(self, env: dict[str, str], workdir: Path | None = None, port: int = 0) -> None:
        super().__init__(workdir)
        self.env = env
        self.fixed_port = port

    @property
    def mitigation_on(self) -> bool:
        return self.env.get("MLCHAOS_SERVING_MITIGATION", "on") != "off"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        self.port = self.fixed_port or free_port()
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "mlchaos_orchestration.gameday.serving:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        self._spawn(cmd, self.env)
        self._wait_until(lambda: http_get(self.url + "/healthz"), 60)
        return self


class PrometheusServer(_Process):
    """A private Prometheus (Debian's) scraping ``targets`` (host:port) every second."""

    name = "prometheus"

    def __init__(self, targets: list[str], workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.targets = targets

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        binary = shutil.which("prometheus")
        if binary is None:
            raise StackError("prometheus not found: run scripts/bootstrap.sh --with-serving")
        self.port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(scrape_config(self.targets))
        self._spawn(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ]
        )
        self._wait_until(lambda: http_get(self.url + "/-/ready"), 60)
        return self

    def wait_for_first_scrape(self, timeout: float = 30.0) -> None:
        """Block until every target was scraped once (Prometheus' first scrape comes a few
        seconds after it is ready); the game day's probes need data from the start."""
        import json

        def scraped() -> bool:
            body = json.loads(http_get(self.url + "/api/v1/targets"))
            active = body["data"]["activeTargets"]
            return bool(active) and all(
                t.get("lastScrape", "").startswith("2") and t.get("health") != "unknown"
                for t in active
            )

        self._wait_until(scraped, timeout)


def scrape_config(targets: list[str], interval: str = "1s") -> str:
    """A Prometheus config scraping the prediction API at ``targets`` every ``interval``."""
    listed = ", ".join(f"'{t}'" for t in targets)
    return (
        "global:\n"
        f"  scrape_interval: {interval}\n"
        f"  evaluation_interval: {interval}\n"
        "scrape_configs:\n"
        "  - job_name: prediction_api\n"
        f"    scrape_interval: {interval}\n"
        f"    static_configs:\n      - targets: [{listed}]\n"
    )
