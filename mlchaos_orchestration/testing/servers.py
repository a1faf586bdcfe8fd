"""Real, throwaway servers for tests: PostgreSQL, a moto S3 server, an SMTP server (aiosmtpd) and
a webhook receiver.

Each is a context manager that listens on 127.0.0.1 only, on a free port, and leaves nothing
behind. PostgreSQL and moto run as separate processes; their cleanup is delegated to a small
guardian process (:mod:`._reaper`) so they are stopped and deleted even if the test process is
interrupted or killed. Nothing here changes ``os.environ`` or any other global state.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlchaos_orchestration.errors import MlchaosError

PG_ROOT = "/usr/lib/postgresql"
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_START_ATTEMPTS = 3
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # ignore *_proxy env


class ServerStartError(MlchaosError):
    """A test server could not be found or started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class _Guardian:
    """Handle on a :mod:`._reaper` process that runs a cleanup plan when told or orphaned."""

    def __init__(self, plan: dict[str, list]):
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mlchaos_orchestration.testing.reaper", json.dumps(plan)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C on our process group must not stop the cleanup
        )

    def release(self, timeout: float = 60.0) -> None:
        """Run the plan now and wait for it to finish."""
        if self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.write(b"stop\n")
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        self._proc.wait(timeout=timeout)


# --------------------------------------------------------------------------- PostgreSQL


def find_postgres_bin(root: str | os.PathLike[str] = PG_ROOT) -> Path:
    """Newest Debian PostgreSQL server bin dir (``<root>/<version>/bin`` with initdb, pg_ctl)."""

    def version(bin_dir: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", bin_dir.parent.name)) or (0,)

    dirs = [
        d for d in Path(root).glob("*/bin") if (d / "initdb").is_file() and (d / "pg_ctl").is_file()
    ]
    if not dirs:
        raise ServerStartError(
            f"PostgreSQL server binaries not found under {root}/*/bin: run scripts/bootstrap.sh"
        )
    return max(dirs, key=version)


class PostgresServer:
    """A private PostgreSQL cluster in a temp dir (trust auth, fsync off, 127.0.0.1 only).

    >>> with PostgresServer() as pg:
    ...     engine = sqlalchemy.create_engine(pg.url)

    As root, the server binaries run as the ``postgres`` OS user (they refuse root).
    """

    user = "postgres"

    def __init__(
        self,
        database: str = "mlchaos",
        bin_dir: str | os.PathLike[str] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
    ):
        self.database = _check_db_name(database)
        self._bin_dir = Path(bin_dir) if bin_dir else None
        self._base_dir = base_dir
        self.port = 0
        self.root: Path | None = None
        self._guardian: _Guardian | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default database."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        if self.root is None:
            raise ServerStartError("PostgresServer is not started")
        return self.root / "data"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self._bin_dir / args[0]), *args[1:]]
        return ["runuser", "-u", self.user, "--", *cmd] if os.geteuid() == 0 else cmd

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        """initdb, configure and start the cluster, then create the default database."""
        self._bin_dir = self._bin_dir or find_postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="mlchaos-pg-", dir=self._base_dir))
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        stop = self._cmd("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        self._guardian = _Guardian({"commands": [stop], "rmtree": [str(self.root)]})
        try:
            self._initdb()
            self._start_on_free_port()
            self.create_database(self.database)
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self) -> None:
        done = self._run(
            "initdb", "-D", str(self.data_dir), "-U", self.user, "-A", "trust",
            "-E", "UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        if done.returncode:
            raise ServerStartError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("".join(f"\n{key} = {value}" for key, value in settings.items()) + "\n")

    def _start_on_free_port(self) -> None:
        log = self.root / "postgres.log"
        for _ in range(_START_ATTEMPTS):
            self.port = free_port()
            done = self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(log), "-w", "-t", "60",
                "-o", f"-p {self.port}",
            )  # fmt: skip
            if done.returncode == 0:
                return
            if "already in use" not in _tail(log):
                break
        raise ServerStartError(f"PostgreSQL did not start (log {log}):\n{_tail(log)}")

    def create_database(self, name: str | None = None) -> str:
        """Create a database (a unique name if ``name`` is None) and return its URL."""
        import psycopg2

        name = _check_db_name(name or f"t_{uuid.uuid4().hex[:16]}")
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url_for(name)

    def stop(self) -> None:
        """Stop the server immediately and delete its directory."""
        if self._guardian is not None:
            self._guardian.release()
            self._guardian = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _check_db_name(name: str) -> str:
    if not _DB_NAME.match(name):
        raise ValueError(f"invalid database name {name!r} (letters, digits, _; max 63)")
    return name


# --------------------------------------------------------------------------- moto S3


class MotoS3Server:
    """moto's server mode in a subprocess, reached over real HTTP at :attr:`endpoint_url`."""

    def __init__(self, python: str | None = None, startup_timeout: float = 30.0):
        self._python = python or sys.executable
        self._timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_dir: Path | None = None  # holds moto.log while running
        self._guardian: _Guardian | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServerStartError("MotoS3Server is not started")
        return self.process.pid

    def start(self) -> MotoS3Server:
        """Start the server and wait until it answers HTTP."""
        try:
            for _ in range(_START_ATTEMPTS):
                if self._spawn():
                    return self
                log = _tail(self.log_dir / "moto.log")
                self.stop()
                if "already in use" not in log:
                    break
            raise ServerStartError(f"moto server did not start:\n{log}")
        except BaseException:
            self.stop()
            raise

    def _spawn(self) -> bool:
        self.port = free_port()
        self.log_dir = Path(tempfile.mkdtemp(prefix="mlchaos-moto-"))
        cmd = [self._python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with open(self.log_dir / "moto.log", "wb") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self._guardian = _Guardian({"terminate": [self.process.pid], "rmtree": [str(self.log_dir)]})
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                _DIRECT.open(self.endpoint_url + "/", timeout=1).close()
                return True
            except urllib.error.HTTPError:
                return True  # any HTTP answer means the server is up
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Terminate the server and delete its log."""
        if self._guardian is not None:
            self._guardian.release()
            self._guardian = None
        if self.process is not None:
            self.process.wait(timeout=10)

    def __enter__(self) -> MotoS3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class ReceivedMail:
    """One message accepted by :class:`SmtpServer`."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    received_at: float

    @property
    def subject(self) -> str:
        from email import message_from_bytes

        return str(message_from_bytes(self.data).get("Subject", ""))


class SmtpServer:
    """A real SMTP server on 127.0.0.1 (aiosmtpd, in a thread) recording the messages it accepts.

    Set :attr:`refuse` to an SMTP reply (e.g. ``"550 5.7.1 relaying denied"``) to make it refuse
    every message at DATA; the refused attempts are counted in :attr:`refused`.

    >>> with SmtpServer() as smtp:
    ...     smtplib.SMTP(smtp.host, smtp.port).sendmail("a@x", ["b@x"], "Subject: hi\\n\\nbody")
    """

    host = "127.0.0.1"

    def __init__(self, refuse: str | None = None):
        self.refuse = refuse
        self.refused = 0
        self.port = 0
        self._messages: list[ReceivedMail] = []
        self._cond = threading.Condition()
        self._controller: Any = None

    @property
    def messages(self) -> list[ReceivedMail]:
        """A snapshot of the accepted messages, oldest first."""
        with self._cond:
            return list(self._messages)

    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least ``n`` messages were accepted; raise TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= n, timeout=timeout):
                raise TimeoutError(
                    f"SMTP server got {len(self._messages)} message(s), expected {n}"
                )
            return list(self._messages)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """aiosmtpd handler hook: accept (250) and record, or answer :attr:`refuse`."""
        with self._cond:
            if self.refuse:
                self.refused += 1
                return self.refuse
            self._messages.append(
                ReceivedMail(
                    str(envelope.mail_from),
                    tuple(str(r) for r in envelope.rcpt_tos),
                    bytes(envelope.original_content or envelope.content or b""),
                    time.time(),
                )
            )
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller

        last: Exception | None = None
        for _ in range(_START_ATTEMPTS):
            self.port = free_port()
            controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10)
            try:
                controller.start()
            except Exception as exc:  # noqa: BLE001 - port taken in between: try another
                last = exc
                continue
            self._controller = controller
            return self
        raise ServerStartError(f"SMTP server did not start: {last}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
