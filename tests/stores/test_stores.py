"""Stores: byte-exact, idempotent, crash-safe backup/restore on real files, moto S3 and SQL."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mlchaos_orchestration.core import formats
from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import RestoreError, TargetError
from mlchaos_orchestration.stores import local as local_mod
from mlchaos_orchestration.stores.local import LocalStore
from mlchaos_orchestration.stores.s3 import BACKUP_PREFIX, S3Store
from mlchaos_orchestration.stores.sql import SqlStore, backup_table_name


# --------------------------------------------------------------------------------- local files
@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "events"
    (root / "ds=1").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "ds=1" / "part-0.csv").write_text("a,b\n1,x\n2,y\n")
    (root / "top.bin").write_bytes(os.urandom(4096))
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the target")
    (root / "link").symlink_to(outside)
    os.utime(root / "top.bin", (1_600_000_000, 1_600_000_000))
    return root


def test_local_dir_roundtrip_is_byte_exact_and_idempotent(tree: Path, tmp_path: Path) -> None:
    store, target = LocalStore(tmp_path / "bk"), Target.parse(str(tree))
    before = store.checksum(target)
    assert {"./", "empty/", "ds=1/", "ds=1/part-0.csv", "top.bin", "link"} <= set(before)
    ref = store.backup(target, "b1")
    assert json.loads(json.dumps(ref)) == ref
    assert (tmp_path / "bk" / "b1" / "payload" / "link").is_symlink()  # link kept, not followed

    (tree / "top.bin").write_bytes(b"changed")
    (tree / "ds=1" / "part-0.csv").unlink()
    (tree / "new.txt").write_text("added")
    (tree / "empty").rmdir()
    assert store.checksum(target) != before

    store.restore(target, ref)
    store.restore(target, ref)
    assert store.checksum(target) == before
    assert (tree / "top.bin").stat().st_mtime == 1_600_000_000
    assert (tmp_path / "secret.txt").read_text() == "outside the target"
    store.discard(ref)
    assert not (tmp_path / "bk" / "b1").exists()
    store.restore(target, ref)  # after discard: content already right, nothing to do


def test_local_file_replaced_by_dir_is_restored(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1 bytes")
    store, target = LocalStore(tmp_path / "bk"), Target.parse(str(path))
    before = store.checksum(target)
    ref = store.backup(target, "b2")
    path.unlink()
    path.mkdir()
    (path / "junk").write_text("x")
    store.restore(target, ref)
    assert path.is_file() and store.checksum(target) == before


def test_local_target_absent_at_backup_is_removed_on_restore(tmp_path: Path) -> None:
    path = tmp_path / "later.csv"
    store, target = LocalStore(tmp_path / "bk"), Target.parse(str(path))
    ref = store.backup(target, "b3")
    path.write_text("created by someone")
    store.restore(target, ref)
    assert not path.exists() and store.checksum(target) == {}


def test_local_restore_killed_midway_can_rerun(tree: Path, tmp_path: Path) -> None:
    store, target = LocalStore(tmp_path / "bk"), Target.parse(str(tree))
    before = store.checksum(target)
    ref = store.backup(target, "b4")
    # state a SIGKILL leaves after the staging copy and the removal, before the rename
    staging = tree.with_name(f".{tree.name}.mlchaos-restore-b4")
    local_mod.copy_path(tmp_path / "bk" / "b4" / "payload", staging)
    local_mod.remove_path(tree)
    (tree.parent / f".{tree.name}.mlchaos-restore-old").write_text("stale temp")
    store.restore(target, ref)
    assert store.checksum(target) == before
    assert sorted(p.name for p in tree.parent.iterdir()) == ["events"]


def test_local_backup_interrupted_is_not_complete(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, target = LocalStore(tmp_path / "bk"), Target.parse(str(tree))

    def crash(src: Path, dst: Path) -> None:
        dst.mkdir()
        (dst / "half").write_text("half a copy")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(local_mod, "copy_path", crash)
    with pytest.raises(KeyboardInterrupt):
        store.backup(target, "b5")
    monkeypatch.undo()
    assert not (tmp_path / "bk" / "b5" / "manifest.json").exists()
    fake_ref = {
        "kind": "local",
        "backup_id": "b5",
        "folder": str(tmp_path / "bk" / "b5"),
        "existed": True,
        "files": {},
    }
    with pytest.raises(RestoreError):
        store.restore(target, fake_ref)
    ref = store.backup(target, "b5")  # a re-run starts over and completes
    assert ref["files"] == local_mod.fingerprint(tmp_path / "bk" / "b5" / "payload")


# ------------------------------------------------------------------------------------------ S3
def _put_tree(client: Any, bucket: str) -> None:
    client.put_object(
        Bucket=bucket,
        Key="events/ds=1/a.csv",
        Body=b"a\n1\n",
        Metadata={"owner": "etl"},
        ContentType="text/csv",
    )
    client.put_object(Bucket=bucket, Key="events/ds=1/b.bin", Body=os.urandom(2048))
    client.put_object(Bucket=bucket, Key="events/ds=2/a.csv", Body=b"a\n2\n")
    client.put_object(Bucket=bucket, Key="other/keep.txt", Body=b"untouched")


def test_s3_prefix_roundtrip(s3_client: Any, s3_bucket: str, s3_endpoint: str) -> None:
    _put_tree(s3_client, s3_bucket)
    store = S3Store(endpoint_url=s3_endpoint)
    target = Target.parse(f"s3://{s3_bucket}/events/")
    before = store.checksum(target)
    assert sorted(before) == ["events/ds=1/a.csv", "events/ds=1/b.bin", "events/ds=2/a.csv"]
    ref = store.backup(target, "s1")
    listed = store.keys(Target.parse(f"s3://{s3_bucket}/"))
    assert not any(k.startswith(BACKUP_PREFIX) for k in listed)

    s3_client.delete_object(Bucket=s3_bucket, Key="events/ds=1/a.csv")
    s3_client.put_object(Bucket=s3_bucket, Key="events/ds=1/b.bin", Body=b"overwritten")
    s3_client.put_object(Bucket=s3_bucket, Key="events/ds=3/new.csv", Body=b"new")
    store.restore(target, ref)
    store.restore(target, ref)
    assert store.checksum(target) == before
    head = s3_client.head_object(Bucket=s3_bucket, Key="events/ds=1/a.csv")
    assert head["Metadata"] == {"owner": "etl"} and head["ContentType"] == "text/csv"
    store.discard(ref)
    left = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=BACKUP_PREFIX).get("KeyCount")
    assert left == 0
    body = s3_client.get_object(Bucket=s3_bucket, Key="other/keep.txt")["Body"].read()
    assert body == b"untouched"


def test_s3_single_object_and_interrupted_backup(
    s3_client: Any, s3_bucket: str, s3_endpoint: str
) -> None:
    _put_tree(s3_client, s3_bucket)
    store = S3Store(endpoint_url=s3_endpoint)
    target = Target.parse(f"s3://{s3_bucket}/events/ds=2/a.csv")
    before = store.checksum(target)
    assert list(before) == ["events/ds=2/a.csv"]
    # a crash after copying objects but before the manifest: not a complete backup
    s3_client.copy_object(
        Bucket=s3_bucket,
        Key=f"{BACKUP_PREFIX}s2/objects/events/ds=2/a.csv",
        CopySource={"Bucket": s3_bucket, "Key": "events/ds=2/a.csv"},
    )
    fake_ref = {
        "kind": "s3",
        "bucket": s3_bucket,
        "prefix": f"{BACKUP_PREFIX}s2/",
        "objects": {"events/ds=2/a.csv": "0" * 64},
    }
    with pytest.raises(RestoreError):
        store.restore(target, fake_ref)
    ref = store.backup(target, "s2")
    s3_client.delete_object(Bucket=s3_bucket, Key="events/ds=2/a.csv")
    assert store.checksum(target) == {}
    store.restore(target, ref)
    assert store.checksum(target) == before


def test_s3_backup_prefix_is_not_a_target(s3_client: Any, s3_bucket: str, s3_endpoint: str) -> None:
    with pytest.raises(TargetError):
        S3Store(endpoint_url=s3_endpoint).keys(Target.parse(f"s3://{s3_bucket}/{BACKUP_PREFIX}"))


# ----------------------------------------------------------------------------------------- SQL
@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'src.db'}"
    return request.getfixturevalue("pg_url")


ROWS = [
    {
        "id": i,
        "ds": f"2024-01-0{1 + i % 3}",
        "amount": None if i == 4 else i * 1.5,
        "day": dt.date(2024, 1, 1 + i % 3),
        "blob": bytes([i, 0, 255]),
        "note": f"n{i}",
    }
    for i in range(9)
]


def make_events(url: str, rows: list[dict[str, Any]] = ROWS) -> None:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(
        "events",
        meta,
        sa.Column("id", sa.Integer),
        sa.Column("ds", sa.String(10)),
        sa.Column("amount", sa.Float),
        sa.Column("day", sa.Date),
        sa.Column("blob", sa.LargeBinary),
        sa.Column("note", sa.Text),
    )
    with engine.begin() as conn:
        meta.create_all(conn)
        conn.execute(sa.insert(table), rows)
    engine.dispose()


def sql_exec(url: str, statement: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.exec_driver_sql(statement)
            return result.fetchall() if result.returns_rows else None
    finally:
        engine.dispose()


@pytest.mark.parametrize("where", [None, {"ds": "2024-01-02"}])
def test_sql_roundtrip(db_url: str, where: dict[str, Any] | None) -> None:
    make_events(db_url)
    store = SqlStore()
    target = Target.parse({"url": db_url, "table": "events", "where": where})
    before = store.checksum(target)
    assert before["count"] == (3 if where else 9)
    ref = store.backup(target, "q-1")
    assert json.loads(json.dumps(ref)) == ref
    sql_exec(db_url, "UPDATE events SET note = 'x' WHERE id IN (0, 1)")  # id 0 is in 2024-01-01
    sql_exec(db_url, "DELETE FROM events WHERE id = 4")
    sql_exec(db_url, "INSERT INTO events (id, ds) VALUES (99, '2024-01-02')")
    assert store.checksum(target) != before
    store.restore(target, ref)
    store.restore(target, ref)
    assert store.checksum(target) == before
    note_of_0 = sql_exec(db_url, "SELECT note FROM events WHERE id = 0")[0][0]
    assert note_of_0 == ("x" if where else "n0")  # a partition restore leaves other rows alone
    store.discard(ref)
    assert not sa.inspect(sa.create_engine(db_url)).has_table(backup_table_name("q-1"))


def test_sql_checksum_is_order_independent_and_content_sensitive(tmp_path: Path) -> None:
    a, b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    make_events(a)
    make_events(b, list(reversed(ROWS)))
    store = SqlStore()
    ta, tb = (Target.parse({"url": u, "table": "events"}) for u in (a, b))
    assert store.checksum(ta) == store.checksum(tb)
    sql_exec(b, "UPDATE events SET blob = X'00' WHERE id = 3")
    assert store.checksum(ta) != store.checksum(tb)
    assert store.checksum(Target.parse({"url": a, "table": "missing"})) == {}
    sql_exec(a, "CREATE TABLE loose (v)")  # SQLite: no declared type, values keep their type
    loose = Target.parse({"url": a, "table": "loose"})
    seen = []
    for value in ("1", "'1'", "NULL", "1.0", "X'31'"):
        sql_exec(a, "DELETE FROM loose")
        sql_exec(a, f"INSERT INTO loose VALUES (2), ({value})")
        seen.append(store.checksum(loose)["rows"])
    assert len(set(seen)) == len(seen)


def test_sql_checksum_tells_null_from_nan(pg_url: str) -> None:
    sql_exec(pg_url, "CREATE TABLE f (x DOUBLE PRECISION)")
    store, target = SqlStore(), Target.parse({"url": pg_url, "table": "f"})
    sql_exec(pg_url, "INSERT INTO f VALUES (1.5), (NULL)")
    with_null = store.checksum(target)
    sql_exec(pg_url, "UPDATE f SET x = 'NaN' WHERE x IS NULL")
    assert store.checksum(target) != with_null


def test_sql_rejects_unsafe_identifiers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    make_events(url)
    store = SqlStore()
    with pytest.raises(TargetError):
        store.checksum(Target.parse({"url": url, "table": "events; DROP TABLE events"}))
    with pytest.raises(TargetError):
        store.backup(Target.parse({"url": url, "table": "events", "where": {"ds or 1=1": 1}}), "z")
    assert store.count(Target.parse({"url": url, "table": "events"})) == 9


# ------------------------------------------------------------------------------------- formats
def test_formats_empty_and_truncate_keep_schema(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "a": [1, 2, 3, 4],
            "t": pd.date_range("2024-01-01", periods=4),
            "s": ["x", "y,z", "w", "v"],
        }
    )
    for fmt in ("parquet", "csv", "jsonl", "json"):
        data = formats.write_frame(frame, fmt)
        assert len(formats.read_frame(formats.truncate(data, 0.5, fmt), fmt)) == 2
        empty = formats.empty_like(data, fmt)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            assert pq.read_schema(pa_buf(empty)) == pq.read_schema(pa_buf(data))
            assert len(formats.read_frame(empty, fmt)) == 0
        if fmt == "csv":
            assert empty == b"a,t,s\n"
    path = tmp_path / "x.csv"
    path.write_bytes(formats.write_frame(frame, "csv"))
    assert formats.truncate(path, 0.75).count(b"\n") == 4  # header + 3 rows, verbatim values
    with pytest.raises(TargetError):
        formats.detect_format("x.xlsx")


def pa_buf(data: bytes) -> Any:
    import pyarrow as pa

    return pa.BufferReader(data)


def test_sql_restores_identity_columns(pg_url: str) -> None:
    sql_exec(pg_url, "CREATE TABLE ids (id INT GENERATED ALWAYS AS IDENTITY, v TEXT)")
    sql_exec(pg_url, "INSERT INTO ids (v) VALUES ('a'), ('b'), ('c')")
    store, target = SqlStore(), Target.parse({"url": pg_url, "table": "ids"})
    before = store.checksum(target)
    ref = store.backup(target, "ident")
    sql_exec(pg_url, "DELETE FROM ids WHERE v <> 'b'")
    store.restore(target, ref)
    assert store.checksum(target) == before
    assert sql_exec(pg_url, "SELECT id FROM ids ORDER BY id") == [(1,), (2,), (3,)]


def test_s3_listing_paginates(s3_client: Any, s3_bucket: str, s3_endpoint: str) -> None:
    for i in range(5):
        s3_client.put_object(Bucket=s3_bucket, Key=f"p/{i}.txt", Body=str(i).encode())
    store = S3Store(endpoint_url=s3_endpoint)
    store.page_size = 2
    target = Target.parse(f"s3://{s3_bucket}/p/")
    before = store.checksum(target)
    assert len(before) == 5
    ref = store.backup(target, "pages")
    store.remove(target)
    store.restore(target, ref)
    assert store.checksum(target) == before


def test_local_refuses_target_containing_backups(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(TargetError):
        LocalStore(tmp_path / "data" / "bk").backup(Target.parse(str(tmp_path / "data")), "x")


KILLABLE = """
import sys
from mlchaos_orchestration.stores.local import LocalStore
from mlchaos_orchestration.core.targets import Target
store, target = LocalStore(sys.argv[1]), Target.parse(sys.argv[2])
print("go", flush=True)
if sys.argv[3] == "backup":
    store.backup(target, "killed")
else:
    store.restore(target, {"kind": "local", "backup_id": "k", "folder": sys.argv[4]})
print("done", flush=True)
"""


def _run_and_kill(args: list[str], delay: float) -> bool:
    """Run KILLABLE, SIGKILL it ``delay`` s after it is ready; True if it finished first."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "go"
    time.sleep(delay)
    proc.kill()
    out, _ = proc.communicate()
    return "done" in out


@pytest.mark.slow
def test_local_sigkill_during_backup_and_restore(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for i in range(20):
        (root / f"d{i}").mkdir(parents=True)
        for j in range(40):
            (root / f"d{i}" / f"f{j}.bin").write_bytes(os.urandom(2048))
    store, target = LocalStore(tmp_path / "bk"), Target.parse(str(root))
    before = store.checksum(target)
    manifest = tmp_path / "bk" / "killed" / "manifest.json"
    killed = 0
    for delay in (0.05, 0.3):
        if not _run_and_kill([str(tmp_path / "bk"), str(root), "backup"], delay):
            killed += 1
            assert not manifest.exists()  # a killed backup is never complete
    assert killed, "no backup was killed midway; the tree is too small for this machine"
    ref = store.backup(target, "killed")
    assert store.checksum(target) == before
    local_mod.remove_path(root / "d3")
    (root / "d4" / "f0.bin").write_bytes(b"faulted")
    for delay in (0.0, 0.1, 0.25, 0.5):
        _run_and_kill([str(tmp_path / "bk"), str(root), "restore", ref["folder"]], delay)
    store.restore(target, ref)
    assert store.checksum(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big", "bk"]
