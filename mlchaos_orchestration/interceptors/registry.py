"""In-process hooks: make an environment fault take effect inside a reader's process.

A hook *spec* is a plain JSON dict (it travels through the ledger to task processes), e.g.
``{"kind": "sql_failure", "url": ..., "rate": 0.5, "seed": 7}``. Kinds:

* ``sql_failure`` - seeded failures/latency on statements and/or new connections of the engines
  whose URL points at ``url`` (:mod:`.sqlalchemy_hook`).
* ``sql_error`` - every statement mentioning ``table`` fails at ``url``.
* ``s3_failure`` - seeded throttling / 503 / timeouts for requests to ``bucket``/``prefix``
  (:mod:`.botocore_hook`).
* ``s3_error`` - every request to ``bucket``/``prefix`` gets the error ``code``/``status``.

``install(spec)`` returns a :class:`Handle`; installing the same spec twice returns the same
handle. Backends (SQLAlchemy, botocore) are imported only when a spec of theirs is installed.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import Any

from mlchaos_orchestration.errors import SpecError

__all__ = ["Handle", "Injector", "attach", "install", "installed", "remove_all", "spec_key"]

#: hook kind -> backend module (relative to this package)
KINDS: dict[str, str] = {
    "sql_failure": "mlchaos_orchestration.interceptors.sql",
    "sql_error": "mlchaos_orchestration.interceptors.sql",
    "s3_failure": "mlchaos_orchestration.interceptors.s3",
    "s3_error": "mlchaos_orchestration.interceptors.s3",
}
MAX_LATENCY_MS = 60_000

_SQL_CLIENTS = (
    "SQLAlchemy engines, made before or after the fault (pandas.read_sql / to_sql given an "
    "engine or URL, a DB hook's get_sqlalchemy_engine())",
    "DB-API connections opened without SQLAlchemy (psycopg2.connect, sqlite3.connect, a DB "
    "hook's get_conn(), pandas.read_sql given such a connection)",
)
_S3_CLIENTS = (
    "botocore clients: boto3.client / boto3.resource / any botocore Session made while the "
    "fault is active (earlier clients through interceptors.attach)",
    "aiobotocore clients, so s3fs and what reads s3:// paths through it (pandas.read_csv / "
    "read_parquet('s3://...'), fsspec, dask); pyarrow's own S3FileSystem (AWS C++ SDK)",
)
#: hook kind -> (the clients its fault reaches, the clients it does not reach)
CLIENTS: dict[str, tuple[str, str]] = {
    "sql_failure": _SQL_CLIENTS,
    "sql_error": _SQL_CLIENTS,
    "s3_failure": _S3_CLIENTS,
    "s3_error": _S3_CLIENTS,
}

_LOCK = threading.RLock()
_INSTALLED: dict[str, Handle] = {}


class Injector:
    """Seeded fail/pass decisions, latency and thread-safe counters for one installed hook.

    Each call point (``"execute"``, ``"connect"``, ``"request"``) draws from its own
    ``random.Random`` seeded by ``(seed, point)``, so a fixed seed gives the same failure
    sequence per point whatever else happens; jitter has its own generator too.
    """

    def __init__(self, spec: dict[str, Any]):
        self.rate = float(spec.get("rate", 1.0))
        self.latency_s = float(spec.get("latency_ms", 0)) / 1000.0
        self.jitter_s = float(spec.get("jitter_ms", 0)) / 1000.0
        self.seed = spec.get("seed")
        self._rngs: dict[str, random.Random] = {}
        self._lock = threading.Lock()
        self.calls = 0
        self.failures = 0

    def _rng(self, point: str) -> random.Random:
        rng = self._rngs.get(point)
        if rng is None:
            rng = random.Random(None if self.seed is None else f"{self.seed}:{point}")
            self._rngs[point] = rng
        return rng

    def roll(self, point: str) -> bool:
        """Count one call at ``point``, sleep the configured latency; True if it must fail."""
        with self._lock:
            fail = self._rng(point).random() < self.rate
            delay = self.latency_s
            if self.jitter_s:
                delay += self._rng("jitter").uniform(0.0, self.jitter_s)
            self.calls += 1
            self.failures += int(fail)
        if delay > 0:
            time.sleep(delay)
        return fail

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"calls": self.calls, "failures": self.failures}


class Handle:
    """One installed hook. ``stats`` counts matching calls and injected failures."""

    def __init__(
        self, key: str, spec: dict[str, Any], injector: Injector, uninstall: Callable[[], None]
    ):
        self.key = key
        self.spec = spec
        self._injector = injector
        self._uninstall: Callable[[], None] | None = uninstall
        self._taken = {"calls": 0, "failures": 0}
        self._take_lock = threading.Lock()

    @property
    def stats(self) -> dict[str, int]:
        """``{"calls": n, "failures": m}`` so far (a snapshot)."""
        return self._injector.stats()

    def take_stats(self) -> dict[str, int]:
        """Calls and failures since the previous ``take_stats`` (each call counted once, even
        when several owners of this handle flush it)."""
        with self._take_lock:
            now = self._injector.stats()
            delta = {k: now[k] - self._taken[k] for k in now}
            self._taken = now
        return delta

    @property
    def active(self) -> bool:
        return self._uninstall is not None

    def remove(self) -> None:
        """Uninstall the hook; calling it again does nothing."""
        with _LOCK:
            uninstall, self._uninstall = self._uninstall, None
            if _INSTALLED.get(self.key) is self:
                del _INSTALLED[self.key]
        if uninstall is not None:
            uninstall()

    def __repr__(self) -> str:
        state = "active" if self.active else "removed"
        return f"<Handle {self.spec.get('kind')} {self.key} {state} {self.stats}>"


def spec_key(spec: dict[str, Any]) -> str:
    """Stable id of a spec (hash of its canonical JSON)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _backend(spec: dict[str, Any]) -> Any:
    if not isinstance(spec, dict):
        raise SpecError([f"hook spec must be a mapping, got {type(spec).__name__}"])
    kind = spec.get("kind")
    if kind not in KINDS:
        raise SpecError([f"hook kind {kind!r} unknown (known: {', '.join(sorted(KINDS))})"])
    return import_module(KINDS[kind], __name__)


def _common_problems(spec: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    rate = spec.get("rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        problems.append(f"{spec['kind']}.rate: must be a number in [0, 1], got {rate!r}")
    for name in ("latency_ms", "jitter_ms"):
        value = spec.get(name, 0)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not 0 <= value <= MAX_LATENCY_MS:
            problems.append(
                f"{spec['kind']}.{name}: must be in [0, {MAX_LATENCY_MS}], got {value!r}"
            )
    seed = spec.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, str))):
        problems.append(f"{spec['kind']}.seed: must be an integer or string, got {seed!r}")
    return problems


def validate(spec: dict[str, Any]) -> None:
    """Raise :class:`SpecError` listing every problem of ``spec``."""
    backend = _backend(spec)
    problems = _common_problems(spec) + backend.problems(spec)
    if problems:
        raise SpecError(problems)


def _register(
    spec: dict[str, Any], key: str, activate: Callable[[Injector], Callable[[], None]]
) -> Handle:
    with _LOCK:
        existing = _INSTALLED.get(key)
        if existing is not None:
            return existing
        injector = Injector(spec)
        handle = Handle(key, dict(spec), injector, activate(injector))
        _INSTALLED[key] = handle
        return handle


def install(spec: dict[str, Any], key: str | None = None) -> Handle:
    """Install the hook described by ``spec`` in this process (idempotent per ``key``)."""
    validate(spec)
    backend = _backend(spec)
    return _register(spec, key or spec_key(spec), lambda inj: backend.install(spec, inj))


def attach(client: Any, spec: dict[str, Any], key: str | None = None) -> Handle:
    """Apply an ``s3_*`` spec to one existing boto3/botocore client only."""
    validate(spec)
    if KINDS[spec["kind"]] != "mlchaos_orchestration.interceptors.s3":
        raise SpecError([f"attach() takes an s3_* hook spec, got kind {spec['kind']!r}"])
    backend = _backend(spec)
    key = key or f"{spec_key(spec)}@{id(client):x}"
    return _register(spec, key, lambda inj: backend.attach(client, spec, inj))


def active() -> list[Handle]:
    """Handles installed right now."""
    with _LOCK:
        return list(_INSTALLED.values())


def remove_all() -> None:
    """Uninstall every hook installed in this process."""
    for handle in active():
        handle.remove()


@contextmanager
def installed(specs: Iterable[dict[str, Any]]) -> Iterator[list[Handle]]:
    """Install ``specs`` for the duration of the block; remove those this block installed."""
    before = {h.key for h in active()}
    handles: list[Handle] = []
    try:
        for spec in specs:
            handles.append(install(spec))
        yield handles
    finally:
        for handle in reversed(handles):
            if handle.key not in before:
                handle.remove()
