"""The ledger: one SQLAlchemy store for experiments, runs, events, fault leases and backups.

SQLite file by default (WAL, busy timeout), any SQLAlchemy URL via ``MLCHAOS_LEDGER_URL``
(PostgreSQL in production). Everything another worker needs lives here, never in process memory.
Schema migrations are versioned in ``MIGRATIONS`` and applied by :meth:`Ledger.migrate`.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import LeaseConflictError, MlchaosError

metadata = sa.MetaData()

schema_table = sa.Table(
    "mlchaos_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)
experiments = sa.Table(
    "mlchaos_experiments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
runs = sa.Table(
    "mlchaos_runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("experiment", sa.String(200), nullable=False, index=True),
    sa.Column("suite_id", sa.String(64), nullable=True, index=True),
    sa.Column("pipeline", sa.String(200), nullable=False, default=""),
    sa.Column("orchestrator", sa.String(40), nullable=False, default="plain"),
    sa.Column("control", sa.Boolean, nullable=False, default=False),
    sa.Column("seed", sa.BigInteger, nullable=False, default=0),
    sa.Column("status", sa.String(20), nullable=False, default="running"),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Column("verdict", sa.String(20), nullable=True),
    sa.Column("verdict_json", sa.Text, nullable=True),
    sa.Column("meta_json", sa.Text, nullable=False, default="{}"),
    sa.Column("abort_requested", sa.Boolean, nullable=False, default=False),
)
events = sa.Table(
    "mlchaos_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("source", sa.String(200), nullable=False, default=""),
    sa.Column("data_json", sa.Text, nullable=False, default="{}"),
)
leases = sa.Table(
    "mlchaos_leases",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("fault", sa.String(80), nullable=False),
    sa.Column("targets_json", sa.Text, nullable=False),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("hook_json", sa.Text, nullable=True),
    sa.Column("scope", sa.String(200), nullable=True),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("restore_at", sa.Float, nullable=True),
    sa.Column("claim_until", sa.Float, nullable=True),
    sa.Column("released_at", sa.Float, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
)
backups = sa.Table(
    "mlchaos_backups",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("lease_id", sa.String(64), nullable=False, index=True),
    sa.Column("target_json", sa.Text, nullable=False),
    sa.Column("ref_json", sa.Text, nullable=True),
    sa.Column("checksum_json", sa.Text, nullable=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
suites = sa.Table(
    "mlchaos_suites",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("meta_json", sa.Text, nullable=False, default="{}"),
)
mutex = sa.Table(
    "mlchaos_mutex",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)

LIVE_STATES = ("backing_up", "active", "restoring")
_LOCK_KEY = 0x6D6C6368616F73  # "mlchaos": the advisory lock that serialises migrations


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[experiments, runs, events, leases, backups, mutex])
    conn.execute(sa.insert(mutex).values(id=1, n=0))


def _v2(conn: Connection) -> None:
    """What a suite run adds to its runs (targets, worker exit codes and logs, run date)."""
    metadata.create_all(conn, tables=[suites])


#: Versioned schema migrations: (version, function). Append, never edit a released one.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [(1, _v1), (2, _v2)]


def new_id() -> str:
    """A short unique id (hex)."""
    return uuid.uuid4().hex[:16]


def holder_id() -> str:
    """Who holds a lease: host and pid (for humans; expiry, not liveness, decides recovery)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class Event:
    """One timestamped ledger event."""

    run_id: str
    kind: str
    ts: float
    source: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Lease:
    """An active (or finished) fault lease."""

    id: str
    run_id: str
    fault: str
    targets: list[Target]
    spec: dict[str, Any]
    hook: dict[str, Any] | None
    scope: str | None
    state: str
    holder: str
    acquired_at: float
    expires_at: float
    restore_at: float | None
    claim_until: float | None
    released_at: float | None
    note: str | None

    def due(self, now: float) -> bool:
        """Expired, or past its self-restore time (``late`` outages)."""
        return now >= self.expires_at or (self.restore_at is not None and now >= self.restore_at)


@dataclass
class Backup:
    """A backup copy of one target taken for one lease."""

    id: str
    lease_id: str
    target: Target
    ref: dict[str, Any] | None
    checksum: dict[str, Any] | None
    state: str


class Ledger:
    """Access to the ledger database. Cheap to create; engines are cached per URL."""

    _engines: dict[str, Engine] = {}

    def __init__(self, url: str | None = None, *, migrate: bool = True):
        if url is None:
            from mlchaos_orchestration.settings import get_settings

            url = get_settings().ledger_url
        self.url = url
        self.engine = self._engine_for(url)
        if migrate:
            self.migrate()

    # ------------------------------------------------------------------ engine / schema
    @classmethod
    def _engine_for(cls, url: str) -> Engine:
        engine = cls._engines.get(url)
        if engine is not None and engine.pool is not None:
            pid = getattr(engine, "_mlchaos_pid", None)
            if pid == os.getpid():
                return engine
        try:
            parsed = sa.engine.make_url(url)
        except Exception as exc:  # noqa: BLE001
            raise MlchaosError(f"ledger URL is not a valid SQLAlchemy URL: {exc}") from None
        kwargs: dict[str, Any] = {"future": True}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
            kwargs["connect_args"] = {"timeout": 60}
        else:
            kwargs["pool_pre_ping"] = True
        engine = sa.create_engine(url, **kwargs)
        engine = engine.execution_options(mlchaos_internal=True)
        if parsed.get_backend_name() == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        engine._mlchaos_pid = os.getpid()  # type: ignore[attr-defined]
        cls._engines[url] = engine
        return engine

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version.

        Safe when many processes start at once: on PostgreSQL the whole migration runs under a
        transaction-level advisory lock; elsewhere a concurrent "already exists" is tolerated.
        """
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
                self._apply_pending(conn)
            return max(v for v, _ in MIGRATIONS)
        for attempt in range(20):
            try:
                with self.engine.begin() as conn:
                    self._apply_pending(conn)
                break
            except (sa.exc.IntegrityError, sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
                racing = "already exists" in str(exc) or "UNIQUE" in str(exc)
                if not racing or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))  # another process is migrating: re-check
        return max(v for v, _ in MIGRATIONS)

    def _apply_pending(self, conn: Connection) -> None:
        schema_table.create(conn, checkfirst=True)
        done = {row[0] for row in conn.execute(sa.select(schema_table.c.version))}
        for version, fn in MIGRATIONS:
            if version not in done:
                fn(conn)
                conn.execute(
                    sa.insert(schema_table).values(version=version, applied_at=time.time())
                )

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar() or 0)

    # ------------------------------------------------------------------ experiments / runs
    def save_experiment(self, name: str, spec: dict[str, Any]) -> str:
        exp_id = new_id()
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(experiments).values(
                    id=exp_id, name=name, spec_json=_dumps(spec), created_at=time.time()
                )
            )
        return exp_id

    def start_run(
        self,
        experiment: str,
        *,
        pipeline: str = "",
        orchestrator: str = "plain",
        control: bool = False,
        seed: int = 0,
        run_id: str | None = None,
        suite_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> str:
        """Create a run row (idempotent for a given ``run_id``); return its id."""
        run_id = run_id or new_id()
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first()
            if exists is None:
                conn.execute(
                    sa.insert(runs).values(
                        id=run_id,
                        experiment=experiment,
                        pipeline=pipeline,
                        orchestrator=orchestrator,
                        control=control,
                        seed=int(seed),
                        status="running",
                        started_at=time.time(),
                        suite_id=suite_id,
                        meta_json=_dumps(meta or {}),
                        abort_requested=False,
                    )
                )
        return run_id

    def end_run(self, run_id: str, status: str = "finished") -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(status=status, ended_at=time.time())
            )

    def set_verdict(self, run_id: str, verdict: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(verdict=verdict.get("verdict"), verdict_json=_dumps(verdict))
            )

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        return _run_dict(row) if row else None

    def list_runs(
        self, *, limit: int = 100, experiment: str | None = None, suite_id: str | None = None
    ) -> list[dict[str, Any]]:
        query = sa.select(runs).order_by(runs.c.started_at.desc()).limit(limit)
        if experiment:
            query = query.where(runs.c.experiment == experiment)
        if suite_id:
            query = query.where(runs.c.suite_id == suite_id)
        with self.engine.connect() as conn:
            return [_run_dict(r) for r in conn.execute(query).mappings()]

    def request_abort(self, run_id: str | None = None) -> int:
        """Flag runs (all running ones, or one) as aborted; return how many were flagged."""
        query = sa.update(runs).where(runs.c.status == "running")
        if run_id:
            query = query.where(runs.c.id == run_id)
        with self.engine.begin() as conn:
            return conn.execute(query.values(abort_requested=True)).rowcount or 0

    def abort_requested(self, run_id: str) -> bool:
        with self.engine.connect() as conn:
            return bool(
                conn.execute(sa.select(runs.c.abort_requested).where(runs.c.id == run_id)).scalar()
            )

    # ------------------------------------------------------------------ events
    def save_suite(self, suite_id: str, meta: dict[str, Any]) -> None:
        """Store (or replace) what a suite run knows beyond its runs, for re-rendering."""
        row = {"created_at": time.time(), "meta_json": _dumps(meta)}
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(suites).where(suites.c.id == suite_id).values(**row))
            if not done.rowcount:
                conn.execute(sa.insert(suites).values(id=suite_id, **row))

    def suite_meta(self, suite_id: str) -> dict[str, Any] | None:
        """The details :meth:`save_suite` stored for ``suite_id``, or None."""
        query = sa.select(suites.c.meta_json).where(suites.c.id == suite_id)
        with self.engine.connect() as conn:
            text = conn.execute(query).scalar()
        return None if text is None else json.loads(text)

    def record(
        self, run_id: str, kind: str, *, source: str = "", ts: float | None = None, **data: Any
    ) -> Event:
        """Append an event to a run's stream."""
        event = Event(
            run_id=run_id, kind=kind, ts=time.time() if ts is None else ts, source=source, data=data
        )
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(events).values(
                    run_id=run_id, kind=kind, ts=event.ts, source=source, data_json=_dumps(data)
                )
            )
        return event

    def events(self, run_id: str) -> list[Event]:
        query = (
            sa.select(events).where(events.c.run_id == run_id).order_by(events.c.ts, events.c.id)
        )
        with self.engine.connect() as conn:
            return [
                Event(
                    run_id=r.run_id,
                    kind=r.kind,
                    ts=r.ts,
                    source=r.source,
                    data=json.loads(r.data_json or "{}"),
                )
                for r in conn.execute(query)
            ]

    # ------------------------------------------------------------------ leases
    def acquire_lease(
        self,
        *,
        run_id: str,
        fault: str,
        targets: Iterable[Target],
        spec: dict[str, Any],
        ttl_s: float,
        hook: dict[str, Any] | None = None,
        scope: str | None = None,
        restore_after_s: float | None = None,
    ) -> Lease:
        """Take a lease on ``targets``; refuse if a live lease overlaps any of them.

        Serialised across processes by a write on the mutex row (a row lock on PostgreSQL, the
        database write lock on SQLite), so two experiments never interleave on one target.
        """
        targets = [t.resolved() for t in targets]  # identity in the applier's environment
        now = time.time()
        lease_id = new_id()
        with self.engine.begin() as conn:
            conn.execute(sa.update(mutex).where(mutex.c.id == 1).values(n=mutex.c.n + 1))
            for other in self._live_leases(conn):
                for mine in targets:
                    clash = next((t for t in other.targets if mine.overlaps(t)), None)
                    if clash is not None:
                        raise LeaseConflictError(
                            f"target {mine.describe()} is held by fault {other.fault!r} "
                            f"(lease {other.id}, run {other.run_id}) until it is restored"
                        )
            conn.execute(
                sa.insert(leases).values(
                    id=lease_id,
                    run_id=run_id,
                    fault=fault,
                    targets_json=_dumps([t.model_dump(mode="json") for t in targets]),
                    spec_json=_dumps(spec),
                    hook_json=_dumps(hook) if hook else None,
                    scope=scope,
                    state="backing_up",
                    holder=holder_id(),
                    acquired_at=now,
                    expires_at=now + ttl_s,
                    restore_at=(now + restore_after_s) if restore_after_s else None,
                )
            )
        lease = self.get_lease(lease_id)
        assert lease is not None
        return lease

    def _live_leases(self, conn: Connection) -> list[Lease]:
        query = sa.select(leases).where(leases.c.state.in_(LIVE_STATES))
        return [_lease(r) for r in conn.execute(query).mappings()]

    def get_lease(self, lease_id: str) -> Lease | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.id == lease_id)).mappings().first()
        return _lease(row) if row else None

    def leases(
        self, *, states: Iterable[str] | None = None, run_id: str | None = None
    ) -> list[Lease]:
        query = sa.select(leases).order_by(leases.c.acquired_at)
        if states is not None:
            query = query.where(leases.c.state.in_(list(states)))
        if run_id:
            query = query.where(leases.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [_lease(r) for r in conn.execute(query).mappings()]

    def live_leases(self, run_id: str | None = None) -> list[Lease]:
        return self.leases(states=LIVE_STATES, run_id=run_id)

    def set_lease_state(
        self,
        lease_id: str,
        state: str,
        *,
        expect: Iterable[str] | None = None,
        note: str | None = None,
    ) -> bool:
        """Set a lease's state, optionally only if it is currently in ``expect``."""
        values: dict[str, Any] = {"state": state}
        if state in ("restored", "failed"):
            values["released_at"] = time.time()
        if note is not None:
            values["note"] = note
        query = sa.update(leases).where(leases.c.id == lease_id)
        if expect is not None:
            query = query.where(leases.c.state.in_(list(expect)))
        with self.engine.begin() as conn:
            return (conn.execute(query.values(**values)).rowcount or 0) == 1

    def claim_restore(
        self, lease_id: str, claim_s: float = 30.0, *, dead_holder: str | None = None
    ) -> bool:
        """Atomically claim the right to restore a live lease (one restorer at a time).

        A claim by a restorer that died expires after ``claim_s`` and can be taken over; a claim
        still held by ``dead_holder`` (a restorer known to be dead) can be taken over at once.
        """
        now = time.time()
        stale = leases.c.claim_until < now
        if dead_holder is not None:
            stale = sa.or_(stale, leases.c.holder == dead_holder)
        live = sa.or_(
            leases.c.state.in_(("backing_up", "active")),
            sa.and_(leases.c.state == "restoring", stale),
        )
        query = (
            sa.update(leases)
            .where(leases.c.id == lease_id)
            .where(live)
            .values(state="restoring", claim_until=now + claim_s, holder=holder_id())
        )
        with self.engine.begin() as conn:
            return (conn.execute(query).rowcount or 0) == 1

    def active_hooks(self, now: float | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(lease id, hook spec) of every active, unexpired lease that has an in-process hook."""
        now = time.time() if now is None else now
        query = (
            sa.select(leases.c.id, leases.c.hook_json, leases.c.expires_at, leases.c.restore_at)
            .where(leases.c.state == "active")
            .where(leases.c.hook_json.is_not(None))
        )
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
        return [
            (r.id, json.loads(r.hook_json))
            for r in rows
            if r.expires_at > now and (r.restore_at is None or r.restore_at > now)
        ]

    # ------------------------------------------------------------------ backups
    def begin_backup(self, lease_id: str, target: Target, backup_id: str | None = None) -> str:
        """Record that a backup of ``target`` is starting (so a crash mid-backup is cleaned up)."""
        backup_id = backup_id or f"{lease_id}x{new_id()[:6]}"
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(backups).values(
                    id=backup_id,
                    lease_id=lease_id,
                    target_json=_dumps(target.model_dump(mode="json")),
                    state="pending",
                    created_at=time.time(),
                )
            )
        return backup_id

    def complete_backup(
        self, backup_id: str, ref: dict[str, Any], checksum: dict[str, Any]
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(backups)
                .where(backups.c.id == backup_id)
                .values(ref_json=_dumps(ref), checksum_json=_dumps(checksum), state="complete")
            )

    def set_backup_state(self, backup_id: str, state: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(backups).where(backups.c.id == backup_id).values(state=state))

    def backups(self, lease_id: str) -> list[Backup]:
        query = (
            sa.select(backups).where(backups.c.lease_id == lease_id).order_by(backups.c.created_at)
        )
        with self.engine.connect() as conn:
            return [
                Backup(
                    id=r.id,
                    lease_id=r.lease_id,
                    target=Target(**json.loads(r.target_json)),
                    ref=json.loads(r.ref_json) if r.ref_json else None,
                    checksum=json.loads(r.checksum_json) if r.checksum_json else None,
                    state=r.state,
                )
                for r in conn.execute(query)
            ]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _run_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["meta"] = json.loads(out.pop("meta_json") or "{}")
    raw = out.pop("verdict_json")
    out["verdict_detail"] = json.loads(raw) if raw else None
    return out


def _lease(row: Any) -> Lease:
    return Lease(
        id=row["id"],
        run_id=row["run_id"],
        fault=row["fault"],
        targets=[Target(**t) for t in json.loads(row["targets_json"])],
        spec=json.loads(row["spec_json"]),
        hook=json.loads(row["hook_json"]) if row["hook_json"] else None,
        scope=row["scope"],
        state=row["state"],
        holder=row["holder"],
        acquired_at=row["acquired_at"],
        expires_at=row["expires_at"],
        restore_at=row["restore_at"],
        claim_until=row["claim_until"],
        released_at=row["released_at"],
        note=row["note"],
    )
