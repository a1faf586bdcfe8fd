"""Crash torture: apply environment faults in a child process, SIGKILL it at a random moment,
recover, and prove every target is byte-identical to what it was before.

    python -m mlchaos_orchestration.testing.torture --trials 200 [--seed S] \
        [--kinds local,s3,pg,partition,schema]

A trial builds a fresh, seeded target (a directory of CSV files, S3 objects on a moto server, a
PostgreSQL table, a ``ds=...`` partitioned layout on disk / S3 / a SQL partition column, or a
PostgreSQL / SQLite table hit by a schema fault: ``drop_column``, ``rename_column``,
``type_flip``) and fingerprints it *independently of the stores* (sha256 of every file and object;
for every table its columns and types, indexes and an md5 over the sorted rows, computed by the
database itself). A child process then runs one role through the real code
path (``session.apply_fault``, ``session.restore_lease``, ``session.restore_all``):

* ``apply``          apply the fault and keep it (killed mid-backup, mid-apply or holding it);
* ``apply_restore``  apply, then restore (killed anywhere in between, mid-restore included);
* ``restorer``       a first child applied the fault and died; a second one restores and is
                     killed (a restore interrupted by a crash).

The kill moment is uniform in ``[0, D]`` after the child reports ``ready``, ``D`` being the
duration of that scenario measured on its first (unkilled) run. Recovery alternates between the
CLI (``mlchaos restore`` in a subprocess) and ``session.recover`` past the lease's TTL. A trial is
*recovered* when every target matches its fingerprint, no lease is live and no backup copy is
left over; *lost* when any target differs. The last line is ``trials: N, lost: L, recovered: R``.

Servers: PostgreSQL and moto are started here (``mlchaos_orchestration.testing.servers``) unless
given (``run_torture(..., env=TortureEnv(...))``, as the test suite does with its fixtures).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("local", "s3", "pg", "partition", "schema")
#: kinds run only when asked for (``--kinds registry``): an MLflow registry on SQLite
EXTRA_KINDS = ("registry",)
TTL_S = 600.0
DS = "2026-03-10"
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}
_OUTAGE_MODES = ("missing", "empty", "truncated", "late", "error")
_ROLES = (("apply", 0.4), ("apply_restore", 0.35), ("restorer", 0.25))
_CHILD_TIMEOUT_S = 120.0


# ----------------------------------------------------------------------------------- environment
@dataclass
class TortureEnv:
    """Where trials run: a work dir, a factory of fresh PostgreSQL databases, an S3 endpoint."""

    workdir: Path
    new_database: Callable[[], str] | None = None
    s3_endpoint: str | None = None


@dataclass
class Scenario:
    """One seeded fault on one freshly built target, plus how to fingerprint what it may touch."""

    kind: str
    key: str  # calibration key: same key, same typical duration
    fault: dict[str, Any]
    env: dict[str, str]  # MLCHAOS_* settings of the trial
    ledger_url: str
    snapshot: Callable[[], dict[str, Any]]
    leftovers: Callable[[], list[str]]


@dataclass
class TrialResult:
    """What one trial did and found."""

    index: int
    scenario: str
    role: str
    recovery: str
    delay_s: float | None
    kill_point: str
    identical: bool
    leases_left: int
    leftovers: list[str]
    recovery_s: float
    child_error: str | None = None
    diff: list[str] = field(default_factory=list)

    @property
    def recovered(self) -> bool:
        return self.identical and self.leases_left == 0 and not self.leftovers

    def line(self) -> str:
        delay = "end" if self.delay_s is None else f"{self.delay_s * 1000:.0f}ms"
        status = (
            "ok"
            if self.recovered
            else (
                f"FAILED identical={self.identical} leases={self.leases_left} "
                f"leftovers={self.leftovers[:3]} diff={self.diff[:3]}"
            )
        )
        err = f" child-error={self.child_error}" if self.child_error else ""
        return (
            f"trial {self.index:>4} {self.scenario:<40} role={self.role:<13} "
            f"kill@{delay:<7} ({self.kill_point}) via {self.recovery:<7} "
            f"{self.recovery_s:.2f}s {status}{err}"
        )


@dataclass
class Summary:
    """Totals over all trials."""

    results: list[TrialResult]
    elapsed_s: float

    @property
    def trials(self) -> int:
        return len(self.results)

    @property
    def lost(self) -> int:
        return sum(not r.identical for r in self.results)

    @property
    def recovered(self) -> int:
        return sum(r.recovered for r in self.results)

    @property
    def kill_points(self) -> Counter[str]:
        return Counter(r.kill_point for r in self.results)

    def last_line(self) -> str:
        return f"trials: {self.trials}, lost: {self.lost}, recovered: {self.recovered}"


# ---------------------------------------------------------------------------------- fingerprints
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256 | 'dir' | 'link:<dest>'}`` of everything under ``root``."""
    out: dict[str, str] = {}
    if not os.path.lexists(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in dirnames + filenames:
            path = base / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = sha256_bytes(path.read_bytes())
    return out


def s3_snapshot(client: Any, bucket: str) -> dict[str, str]:
    """``{key: sha256}`` of every object in ``bucket`` (backup copies included)."""
    out: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", ()):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = sha256_bytes(body)
    return out


def pg_snapshot(url: str, ignore: frozenset[str]) -> dict[str, Any]:
    """``{table: [columns, row count, md5 over sorted row md5s]}`` of every public table."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    out: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            tables = (
                conn.execute(
                    sa.text(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = 'public' ORDER BY table_name"
                    )
                )
                .scalars()
                .all()
            )
            for table in tables:
                if table in ignore:
                    continue
                cols = (
                    conn.execute(
                        sa.text(
                            "SELECT column_name || ':' || data_type"
                            " FROM information_schema.columns"
                            " WHERE table_schema = 'public' AND table_name = :t"
                            " ORDER BY ordinal_position"
                        ),
                        {"t": table},
                    )
                    .scalars()
                    .all()
                )
                quoted = '"' + table.replace('"', '""') + '"'
                count, digest = conn.execute(
                    sa.text(
                        f"SELECT count(*), coalesce(md5(string_agg(md5(r::text), ',' "
                        f"ORDER BY md5(r::text))), '') FROM {quoted} r"
                    )
                ).one()
                indexes = (
                    conn.execute(
                        sa.text(
                            "SELECT indexdef FROM pg_indexes"
                            " WHERE schemaname = 'public' AND tablename = :t ORDER BY indexname"
                        ),
                        {"t": table},
                    )
                    .scalars()
                    .all()
                )
                out[table] = [list(cols), int(count), digest, list(indexes)]
    finally:
        engine.dispose()
    return out


def sqlite_snapshot(path: Path) -> dict[str, Any]:
    """``{table: [columns with declared types, indexes, row count, sha256 over sorted rows]}`` of
    a SQLite file, as SQLite's catalog reports them (PRAGMA table_info / index_list /
    index_info); each value is rendered by SQLite's ``quote()`` (1, 1.0, '1' and X'31' differ)."""
    import sqlite3

    out: dict[str, Any] = {}
    if not path.exists():
        return out
    conn = sqlite3.connect(str(path))
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            ).fetchall()
        ]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            cols = conn.execute(f"PRAGMA table_info({quoted})").fetchall()
            # the catalog's view (SQLite's RENAME re-quotes the name in the stored DDL text)
            indexes = [
                [*index, conn.execute(f'PRAGMA index_info("{index[1]}")').fetchall()]
                for index in conn.execute(f"PRAGMA index_list({quoted})").fetchall()
            ]
            values = " || ',' || ".join('quote("' + c[1].replace('"', '""') + '")' for c in cols)
            rows = sorted(r[0] for r in conn.execute(f"SELECT {values} FROM {quoted}"))
            digest = sha256_bytes("\n".join(rows).encode())
            out[table] = [[list(c) for c in cols], [list(i) for i in indexes], len(rows), digest]
    finally:
        conn.close()
    return out


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [
        f"{k}: {'missing' if k not in after else 'added' if k not in before else 'changed'}"
        for k in keys
        if before.get(k) != after.get(k)
    ]


# ------------------------------------------------------------------------------------ test data
def _csv(rng: random.Random, rows: int, ds: str) -> bytes:
    lines = ["id,ds,amount,label,ts"]
    lines += [
        f"{i},{ds},{rng.uniform(-1e3, 1e3):.6f},{rng.choice('abcde')},{ds}T{i % 24:02d}:00:00"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def _day(ds: str, back: int) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(ds) - dt.timedelta(days=back)).isoformat()


def _s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


class _Builder:
    """Builds one trial's target and scenario (everything seeded by ``rng``)."""

    def __init__(self, env: TortureEnv, index: int, rng: random.Random):
        self.env, self.index, self.rng = env, index, rng
        self.root = env.workdir / f"trial-{index:05d}"
        self.home = self.root / "home"
        self.data = self.root / "data"
        self.home.mkdir(parents=True)
        self.data.mkdir()
        self.bucket = f"torture-{os.getpid()}-{index}-{rng.randrange(1 << 30):x}"
        self.db_url: str | None = None
        self.sqlite_path: Path | None = None
        self.has_bucket = False
        self.registry: Any = None

    # ---------------------------------------------------------------- settings
    def settings_env(self, ledger_url: str) -> dict[str, str]:
        allowed = [str(self.data)]
        if self.env.s3_endpoint:
            allowed.append(f"s3://{self.bucket}")
        if self.db_url:
            allowed.append(f"{self.db_url}#*")
        if self.sqlite_path:
            allowed.append(f"sqlite:///{self.sqlite_path}#*")
        if self.registry:
            allowed.append(f"{self.registry.tracking_uri}#*")
        env = {
            "MLCHAOS_HOME": str(self.home),
            "MLCHAOS_LEDGER_URL": ledger_url,
            "MLCHAOS_ALLOWED_TARGETS": ",".join(allowed),
            "MLCHAOS_ENVIRONMENT": "dev",
        }
        if self.env.s3_endpoint:
            env["MLCHAOS_S3_ENDPOINT_URL"] = self.env.s3_endpoint
        return env

    def ledger_url(self) -> str:
        if self.db_url and self.rng.random() < 0.5:
            return self.db_url  # ledger tables in the same PostgreSQL database
        return f"sqlite:///{self.home / 'ledger.db'}"

    # ---------------------------------------------------------------- targets
    def local_tree(self, root: Path, files: int, rows: int, ds: str = DS) -> None:
        for i in range(files):
            sub = root / f"part={i % 4}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"chunk-{i:03d}.csv").write_bytes(_csv(self.rng, rows, ds))

    def s3_objects(self, prefix: str, objects: int, rows: int, ds: str = DS) -> None:
        client = _s3_client(str(self.env.s3_endpoint))
        for i in range(objects):
            client.put_object(
                Bucket=self.bucket, Key=f"{prefix}obj-{i:03d}.csv", Body=_csv(self.rng, rows, ds)
            )

    def pg_tables(self, rows: int) -> None:
        """``events`` (for outages) and ``daily`` (partitioned by ``ds``), filled server-side."""
        import sqlalchemy as sa

        engine = sa.create_engine(str(self.db_url), poolclass=sa.pool.NullPool)
        params = {"salt": self.rng.randrange(1 << 20), "ds": DS, "n": rows}
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "CREATE TABLE events (id integer primary key, amount double precision, "
                        "label text, created date, payload bytea)"
                    )
                )
                conn.execute(
                    sa.text(
                        "CREATE TABLE daily"
                        " (id integer, ds text, amount double precision, note text)"
                    )
                )
                conn.execute(
                    sa.text(
                        "INSERT INTO events SELECT i, ((i * 7919 + :salt) % 100003) / 7.0, "
                        "chr(97 + (i + :salt) % 3), CAST(:ds AS date) - (i % 6), "
                        "decode(md5(i::text || :salt), 'hex') FROM generate_series(1, :n) AS i"
                    ),
                    params,
                )
                conn.execute(
                    sa.text(
                        "INSERT INTO daily SELECT i, to_char(CAST(:ds AS date) - (i % 6), "
                        "'YYYY-MM-DD'), ((i * 31 + :salt) % 1009) / 3.0, "
                        "(ARRAY['x', 'é', '''; drop', NULL])[1 + (i + :salt) % 4] "
                        "FROM generate_series(1, :n) AS i"
                    ),
                    params,
                )
        finally:
            engine.dispose()

    # ---------------------------------------------------------------- scenarios
    def build(self, kind: str) -> Scenario:
        if kind == "s3" or (
            kind == "partition" and self.env.s3_endpoint and self.rng.random() < 0.35
        ):
            _s3_client(str(self.env.s3_endpoint)).create_bucket(Bucket=self.bucket)
            self.has_bucket = True
        if kind == "schema" and self.env.new_database and self.rng.random() < 0.5:
            self.db_url = self.env.new_database()
        elif kind == "schema":
            self.sqlite_path = self.root / "sqlite" / "features.db"
        if kind == "pg" or (
            kind == "partition"
            and self.env.new_database
            and not self.has_bucket
            and self.rng.random() < 0.4
        ):
            if self.env.new_database is None:
                raise RuntimeError("kind needs PostgreSQL but no server was given")
            self.db_url = self.env.new_database()
        builders = {
            "local": self._local,
            "s3": self._s3,
            "pg": self._pg,
            "partition": self._partition,
            "schema": self._schema,
            "registry": self._registry,
        }
        fault, key = builders[kind]()
        ledger_url = self.ledger_url()
        return Scenario(
            kind=kind,
            key=key,
            fault=fault,
            env=self.settings_env(ledger_url),
            ledger_url=ledger_url,
            snapshot=self._snapshot,
            leftovers=self._leftovers,
        )

    def _outage(self, target: Any) -> tuple[dict[str, Any], str]:
        mode = self.rng.choice(_OUTAGE_MODES)
        fault = {
            "fault": "upstream_outage",
            "target": target,
            "mode": mode,
            "keep_fraction": round(self.rng.uniform(0.1, 0.9), 2),
            "delay_s": 3600,
        }
        return fault, mode

    def _local(self) -> tuple[dict[str, Any], str]:
        events = self.data / "events"
        self.local_tree(events, files=self.rng.randint(10, 40), rows=100)
        (self.data / "keep.csv").write_bytes(_csv(self.rng, 50, DS))  # neighbour: untouched
        single = self.rng.random() < 0.25
        target = str(events / "part=0" / "chunk-000.csv") if single else str(events)
        fault, mode = self._outage(target)
        return fault, f"local/{'file' if single else 'dir'}/upstream_outage/{mode}"

    def _s3(self) -> tuple[dict[str, Any], str]:
        self.s3_objects("events/", objects=self.rng.randint(4, 12), rows=60)
        self.s3_objects("other/", objects=3, rows=10)  # neighbour prefix: untouched
        fault, mode = self._outage(f"s3://{self.bucket}/events/")
        return fault, f"s3/upstream_outage/{mode}"

    def _pg(self) -> tuple[dict[str, Any], str]:
        self.pg_tables(rows=self.rng.randint(200, 2000))
        if self.rng.random() < 0.7:
            fault, mode = self._outage({"url": self.db_url, "table": "events"})
            return fault, f"pg/upstream_outage/{mode}"
        return self._sql_partition_fault(), "pg/stale_partition_replay"

    def _sql_partition_fault(self) -> dict[str, Any]:
        return {
            "fault": "stale_partition_replay",
            "url": self.db_url,
            "table": "daily",
            "partition_column": "ds",
            "lag_days": self.rng.randint(1, 3),
            "ds": DS,
        }

    def sqlite_table(self, rows: int) -> None:
        """``events`` in a SQLite file: typed columns, a primary key, an index."""
        import sqlite3

        assert self.sqlite_path is not None
        self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        salt = self.rng.randrange(1 << 20)
        conn = sqlite3.connect(str(self.sqlite_path))
        try:
            conn.execute(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, amount REAL NOT NULL, "
                "label VARCHAR(8), created DATE, payload BLOB)"
            )
            conn.execute("CREATE INDEX events_label ON events (label)")
            conn.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        i,
                        ((i * 7919 + salt) % 100003) / 7.0,
                        "abc"[(i + salt) % 3] if i % 5 else None,
                        _day(DS, i % 6),
                        hashlib.md5(f"{i}{salt}".encode()).digest(),
                    )
                    for i in range(1, rows + 1)
                ],
            )
            conn.commit()
        finally:
            conn.close()

    def _schema(self) -> tuple[dict[str, Any], str]:
        """A schema fault (a data fault on the stored table) on PostgreSQL or SQLite."""
        rows = self.rng.randint(200, 2000)
        if self.db_url:
            self.pg_tables(rows=rows)
            url, where = self.db_url, "pg"
        else:
            self.sqlite_table(rows=rows)
            url, where = f"sqlite:///{self.sqlite_path}", "sqlite"
        name = self.rng.choice(("drop_column", "rename_column", "type_flip"))
        inner: dict[str, Any] = {
            "drop_column": {"columns": self.rng.choice((["label"], ["amount", "created"]))},
            "rename_column": {"mapping": {"amount": "amount_v2"}},
            "type_flip": {"columns": ["amount"], "fraction": round(self.rng.uniform(0.1, 0.9), 2)},
        }[name]
        fault = {
            "fault": "stored_data",
            "inner": {"fault": name, **inner},
            "target": {"url": url, "table": "events"},
        }
        return fault, f"schema/{where}/{name}"

    def _registry(self) -> tuple[dict[str, Any], str]:
        """A registry fault on a 4-version MLflow model (SQLite tracking store)."""
        from mlchaos_orchestration.testing.mlflow_fixture import build_registry

        self.registry = build_registry(self.root / "registry")  # state: see _snapshot
        name, params = self.rng.choice(
            (
                ("model_schema_change", {"change": self.rng.choice(("output_type", "drop_input"))}),
                ("registry_metadata_missing", {}),
                ("alias_moved", {"to": self.rng.choice(("previous", "unvalidated"))}),
                ("stale_model", {}),
            )
        )
        fault = {
            "fault": name,
            "target": self.registry.target,
            "tracking_uri": self.registry.tracking_uri,
            **params,
        }
        return fault, f"registry/{name}"

    def _partition(self) -> tuple[dict[str, Any], str]:
        lag = self.rng.randint(1, 3)
        shift = self.rng.random() < 0.5
        extra = {"shift_timestamps": True, "timestamp_columns": ["ds", "ts"]} if shift else {}
        if self.db_url:
            self.pg_tables(rows=self.rng.randint(200, 2000))
            return self._sql_partition_fault(), "partition/sql"
        if self.has_bucket:
            for back in range(5):
                day = _day(DS, back)
                self.s3_objects(f"lake/ds={day}/", objects=self.rng.randint(2, 6), rows=60, ds=day)
            template = f"s3://{self.bucket}/lake/ds={{ds}}/"
            where = "s3"
        else:
            for back in range(5):
                day = _day(DS, back)
                self.local_tree(
                    self.data / "lake" / f"ds={day}",
                    files=self.rng.randint(4, 12),
                    rows=100,
                    ds=day,
                )
            template = str(self.data / "lake") + "/ds={ds}/"
            where = "local"
        fault = {
            "fault": "stale_partition_replay",
            "template": template,
            "lag_days": lag,
            "ds": DS,
            **extra,
        }
        return fault, f"partition/{where}/{'shifted' if shift else 'copied'}"

    # ---------------------------------------------------------------- fingerprints
    def _ledger_tables(self) -> frozenset[str]:
        from mlchaos_orchestration.core.ledger import metadata

        return frozenset(metadata.tables)

    def _snapshot(self) -> dict[str, Any]:
        """Data fingerprint (backup copies excluded: they are checked as leftovers)."""
        from mlchaos_orchestration.stores.s3 import BACKUP_PREFIX

        snap: dict[str, Any] = {f"file:{k}": v for k, v in local_snapshot(self.data).items()}
        if self.has_bucket:
            objects = s3_snapshot(_s3_client(str(self.env.s3_endpoint)), self.bucket)
            snap.update(
                {f"s3:{k}": v for k, v in objects.items() if not k.startswith(BACKUP_PREFIX)}
            )
        if self.db_url:
            tables = pg_snapshot(self.db_url, self._ledger_tables())
            snap.update(
                {
                    f"table:{k}": v
                    for k, v in tables.items()
                    if not k.startswith(("mlchaos_bak_", "mlchaos_stash_"))
                }
            )
        if self.registry:  # every version, alias, tag, metric, tracking-db table and model file
            from mlchaos_orchestration.testing.mlflow_fixture import registry_state

            snap["registry"] = registry_state(self.registry)
        if self.sqlite_path:
            snap.update(
                {
                    f"sqlite:{k}": v
                    for k, v in sqlite_snapshot(self.sqlite_path).items()
                    if not k.startswith(("mlchaos_bak_", "mlchaos_stash_"))
                }
            )
        return snap

    def _leftovers(self) -> list[str]:
        """Backup copies still present after recovery (files, objects, tables)."""
        from mlchaos_orchestration.stores.s3 import BACKUP_PREFIX

        out = [f"file:{k}" for k in local_snapshot(self.home / "backups")]
        if self.has_bucket:
            out += [
                f"s3:{k}"
                for k in s3_snapshot(_s3_client(str(self.env.s3_endpoint)), self.bucket)
                if k.startswith(BACKUP_PREFIX)
            ]
        if self.db_url:
            out += [
                f"table:{k}"
                for k in pg_snapshot(self.db_url, self._ledger_tables())
                if k.startswith(("mlchaos_bak_", "mlchaos_stash_"))
            ]
        if self.sqlite_path:
            out += [
                f"sqlite:{k}"
                for k in sqlite_snapshot(self.sqlite_path)
                if k.startswith(("mlchaos_bak_", "mlchaos_stash_"))
            ]
        return out


# ------------------------------------------------------------------------------------ the child
def child_main(payload: str) -> int:
    """Child side: run one role through the real session code, reporting milestones on stdout."""
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.safety import SafetySpec
    from mlchaos_orchestration.core.session import apply_fault, restore_all, restore_lease
    from mlchaos_orchestration.faults.base import ApplyContext
    from mlchaos_orchestration.settings import get_settings

    job = json.loads(payload)
    settings = get_settings()
    ledger = Ledger(settings.ledger_url)
    fault = build_fault(job["fault"])
    ctx = ApplyContext(
        seed=job["seed"], ds=DS, run_id=job["run_id"], s3_endpoint_url=settings.s3_endpoint_url
    )
    ledger.start_run("torture", run_id=job["run_id"], seed=job["seed"])
    t0 = time.monotonic()
    _say("ready")
    try:
        if job["role"] == "restorer":
            outcomes = restore_all(ledger, settings=settings, reason="torture restorer")
            if not all(o.restored for o in outcomes):
                raise RuntimeError(f"restore failed: {[o.error for o in outcomes]}")
        else:
            applied = apply_fault(
                ledger,
                fault,
                ctx,
                run_id=job["run_id"],
                safety=SafetySpec(ttl_s=job.get("ttl_s", TTL_S)),
                settings=settings,
            )
            _say(f"applied {time.monotonic() - t0:.6f}")
            if job["role"] == "apply_restore":
                outcome = restore_lease(ledger, applied.lease.id, settings=settings)
                if not outcome.restored:
                    raise RuntimeError(f"restore failed: {outcome.error}")
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which checks the data
        _say(f"error {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        return 1
    _say(f"done {time.monotonic() - t0:.6f}")
    time.sleep(3600)  # hold: the parent kills us
    return 0


def build_fault(spec: dict[str, Any]) -> Any:
    """An environment fault from a job spec; ``{"fault": "stored_data", "inner": {...data fault},
    "target": ...}`` wraps a data fault in a StoredDataFault (as experiments do)."""
    from mlchaos_orchestration.faults.catalog import get_fault_class
    from mlchaos_orchestration.faults.environment.stored import StoredDataFault

    spec = dict(spec)
    name = spec.pop("fault")
    if name == "stored_data":
        inner = dict(spec["inner"])
        data_fault = get_fault_class(inner.pop("fault")).model_validate(inner)
        return StoredDataFault(inner=data_fault, target=spec["target"])
    return get_fault_class(name).model_validate(spec)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class ChildProcess:
    """A torture child (``--child JOB``) whose stdout lines are read by a thread, with arrival
    times. Job: ``{"fault": spec, "seed": n, "role": "apply"|"apply_restore"|"restorer",
    "run_id": id, "ttl_s": optional lease TTL}``."""

    def __init__(self, job: dict[str, Any], env: dict[str, str]):
        full_env = {**os.environ, **AWS_TEST_ENV, **env}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlchaos_orchestration.testing.torture",
                "--child",
                json.dumps(job),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=full_env,
            text=True,
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), line.strip()))
        self.lines.put((time.monotonic(), "eof"))

    def wait_line(self, prefixes: tuple[str, ...], timeout: float) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"child did not report {prefixes} in {timeout}s")
            at, line = self.lines.get(timeout=left)
            if line.startswith(prefixes) or line in ("eof",) or line.startswith("error"):
                return at, line

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def run_child(
    job: dict[str, Any], env: dict[str, str], delay: float | None
) -> tuple[dict[str, float], str | None]:
    """Run a child; SIGKILL it ``delay`` s after ``ready`` (or once it is ``done`` if None).

    Returns the milestones it reported (``applied``/``done``: seconds after ``ready``, as seen
    by the parent) and the child's error line, if any.
    """
    child = ChildProcess(job, env)
    seen: dict[str, float] = {}
    try:
        t_ready, line = child.wait_line(("ready",), _CHILD_TIMEOUT_S)
        if line != "ready":
            return seen, line
        deadline = None if delay is None else time.monotonic() + delay
        while True:
            left = _CHILD_TIMEOUT_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return seen, None
            try:
                at, line = child.wait_line(("applied", "done"), left)
            except (TimeoutError, queue.Empty):
                if deadline is None:
                    raise
                return seen, None
            if line.startswith(("error", "eof")):
                return seen, line
            seen[line.split()[0]] = at - t_ready
            if line.startswith("done") and deadline is None:
                return seen, None
    finally:
        child.kill()


# ------------------------------------------------------------------------------------ the trial
def kill_point(ledger: Any, run_id: str) -> str:
    """Where the kill landed, read from the ledger."""
    leases = ledger.leases(run_id=run_id)
    if not leases:
        return "before-lease"
    lease = leases[-1]
    applied = any(e.kind == "fault_applied" for e in ledger.events(run_id))
    if lease.state == "backing_up":
        return "mid-backup"
    if lease.state == "active":
        return "holding-fault" if applied else "mid-apply"
    if lease.state == "restoring":
        return "mid-restore"
    return "after-restore"


class Torture:
    """Runs seeded trials; remembers each scenario's typical duration (first run calibrates)."""

    def __init__(
        self,
        env: TortureEnv,
        seed: int,
        kinds: list[str],
        log: Callable[[str], None],
        cli_share: float = 0.5,
    ):
        self.env, self.seed, self.kinds, self.log = env, seed, kinds, log
        self.cli_share = cli_share
        self._phases: dict[str, dict[str, float]] = {}  # scenario key or kind -> phase -> s
        self._lock = threading.Lock()

    def window(self, scenario: Scenario, role: str) -> float | None:
        """Typical duration of ``role`` for this scenario (or its kind); None if unmeasured."""
        needs = {
            "apply": ("apply",),
            "apply_restore": ("apply", "restore"),
            "restorer": ("restorer",),
        }[role]
        with self._lock:
            for key in (scenario.key, scenario.kind):
                phases = self._phases.get(key, {})
                if all(p in phases for p in needs):
                    return sum(phases[p] for p in needs)
        return None

    def remember(self, scenario: Scenario, role: str, seen: dict[str, float]) -> None:
        """Record phase durations of a child that ran to its end."""
        if "done" not in seen:
            return
        phases = {"restorer": seen["done"]} if role == "restorer" else {"apply": seen["applied"]}
        if role == "apply_restore":
            phases["restore"] = seen["done"] - seen["applied"]
        with self._lock:
            self._phases.setdefault(scenario.key, {}).update(phases)
            per_kind = self._phases.setdefault(scenario.kind, {})
            for phase, took in phases.items():  # the fastest mode: kills land mid-operation
                per_kind[phase] = min(per_kind.get(phase, took), took)

    def trial(self, index: int) -> TrialResult:
        from mlchaos_orchestration.core.ledger import Ledger

        rng = random.Random(f"{self.seed}:{index}")
        kind = self.kinds[index % len(self.kinds)]
        scenario = _Builder(self.env, index, rng).build(kind)
        before = scenario.snapshot()
        role = rng.choices([r for r, _ in _ROLES], weights=[w for _, w in _ROLES])[0]
        job = {
            "fault": scenario.fault,
            "seed": rng.randrange(1 << 31),
            "role": role,
            "run_id": f"torture{index:05d}",
        }
        error = None
        if role == "restorer":  # a first child applies and dies holding the fault
            seen, error = run_child({**job, "role": "apply"}, scenario.env, None)
            self.remember(scenario, "apply", seen)
        typical = self.window(scenario, role)
        delay = None if typical is None else rng.uniform(0.0, typical)
        seen, child_error = run_child(job, scenario.env, delay)
        self.remember(scenario, role, seen)
        error = error or child_error
        ledger = Ledger(scenario.ledger_url)
        point = kill_point(ledger, job["run_id"])
        method = "cli" if rng.random() < self.cli_share else "recover"
        start = time.monotonic()
        self._recover(method, scenario, ledger)
        took = time.monotonic() - start
        after = scenario.snapshot()
        result = TrialResult(
            index=index,
            scenario=scenario.key,
            role=role,
            recovery=method,
            delay_s=delay,
            kill_point=point,
            identical=after == before,
            leases_left=len(ledger.live_leases()),
            leftovers=scenario.leftovers(),
            recovery_s=took,
            child_error=error,
            diff=_diff(before, after),
        )
        if result.recovered and not os.environ.get("MLCHAOS_TORTURE_KEEP"):
            shutil.rmtree(self.env.workdir / f"trial-{index:05d}", ignore_errors=True)
        return result

    @staticmethod
    def _recover(method: str, scenario: Scenario, ledger: Any) -> None:
        if method == "cli":
            subprocess.run(
                [sys.executable, "-m", "mlchaos_orchestration.cli", "restore"],
                env={**os.environ, **AWS_TEST_ENV, **scenario.env},
                capture_output=True,
                timeout=_CHILD_TIMEOUT_S,
                check=False,
            )
            return
        from mlchaos_orchestration.core.session import recover
        from mlchaos_orchestration.settings import get_settings

        settings = get_settings({**os.environ, **scenario.env})
        live = ledger.live_leases()
        later = max((lease.expires_at for lease in live), default=time.time()) + 1.0
        recover(ledger, settings=settings, now=later)  # as the next start after the TTL

    def run(self, trials: int, jobs: int) -> Summary:
        start = time.monotonic()
        results: list[TrialResult] = []
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for result in pool.map(self._safe_trial, range(trials)):
                self.log(result.line())
                results.append(result)
        return Summary(results, time.monotonic() - start)

    def _safe_trial(self, index: int) -> TrialResult:
        try:
            return self.trial(index)
        except Exception as exc:  # noqa: BLE001 - a harness failure counts as not recovered
            msg = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            return TrialResult(
                index,
                "harness-error",
                "-",
                "-",
                None,
                "unknown",
                True,
                0,
                [msg],
                0.0,
                child_error=msg,
            )


# ------------------------------------------------------------------------------------ entry
@contextmanager
def default_env(kinds: list[str], workdir: Path | None = None) -> Iterator[TortureEnv]:
    """Start the servers the kinds need (PostgreSQL, moto S3) and a work dir."""
    from mlchaos_orchestration.testing.servers import MotoS3Server, PostgresServer

    with ExitStack() as stack:
        root = workdir or Path(tempfile.mkdtemp(prefix="mlchaos-torture-"))
        if workdir is None:
            stack.callback(shutil.rmtree, root, ignore_errors=True)
        env = TortureEnv(workdir=root)
        if {"pg", "partition", "schema"} & set(kinds):
            pg = stack.enter_context(PostgresServer())
            env.new_database = pg.create_database
        if {"s3", "partition"} & set(kinds):
            env.s3_endpoint = stack.enter_context(MotoS3Server()).endpoint_url
        yield env


def run_torture(
    trials: int,
    seed: int = 0,
    kinds: list[str] | None = None,
    env: TortureEnv | None = None,
    jobs: int = 3,
    cli_share: float = 0.5,
    log: Callable[[str], None] = print,
) -> Summary:
    """Run ``trials`` seeded crash trials; return the summary (servers started if not given)."""
    kinds = list(kinds or KINDS)
    unknown = set(kinds) - set(KINDS) - set(EXTRA_KINDS)
    if unknown:
        from mlchaos_orchestration.errors import ConfigError

        known = KINDS + EXTRA_KINDS
        raise ConfigError(f"unknown kinds: {', '.join(sorted(unknown))} (known: {known})")
    for key, value in AWS_TEST_ENV.items():
        os.environ.setdefault(key, value)
    if env is not None:
        return Torture(env, seed, kinds, log, cli_share).run(trials, jobs)
    with default_env(kinds) as started:
        return Torture(started, seed, kinds, log, cli_share).run(trials, jobs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlchaos_orchestration.testing.torture", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="comma list of " + ",".join(KINDS + EXTRA_KINDS)
    )
    parser.add_argument("--jobs", type=int, default=3, help="trials run in parallel")
    parser.add_argument(
        "--cli-share",
        type=float,
        default=0.5,
        help="share of trials recovered by `mlchaos restore`, else recover()",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    summary = run_torture(args.trials, args.seed, kinds, jobs=args.jobs, cli_share=args.cli_share)

    points = ", ".join(f"{k}={v}" for k, v in sorted(summary.kill_points.items()))
    print(f"kill points: {points}")
    slow = max((r.recovery_s for r in summary.results), default=0.0)
    print(
        f"elapsed: {summary.elapsed_s:.1f}s, slowest recovery: {slow:.2f}s, leftover backups: "
        f"{sum(len(r.leftovers) for r in summary.results)}"
    )
    print(summary.last_line())
    return 0 if summary.lost == 0 and summary.recovered == summary.trials else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
