"""upstream_outage: every mode on local files, moto S3 and SQL (SQLite + PostgreSQL).

Each test follows the session's order: checksum, backup, apply, observe through the normal client,
restore (twice), compare checksums, discard.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError
from pydantic import ValidationError

from mlchaos_orchestration.faults.base import ApplyContext, EnvironmentFault
from mlchaos_orchestration.faults.catalog import get_fault_class
from mlchaos_orchestration.faults.environment.outage import UpstreamOutage
from mlchaos_orchestration.settings import get_settings
from mlchaos_orchestration.stores.base import get_store
from mlchaos_orchestration.stores.s3 import BACKUP_PREFIX
from mlchaos_orchestration.stores.sql import backup_table_name, stash_table_name

FRAME = pd.DataFrame(
    {"id": range(10), "amount": [i * 2.5 for i in range(10)], "city": list("abcdefghij")}
)


@dataclass
class Backed:
    store: Any
    target: Any
    ref: dict[str, Any]
    before: dict[str, Any]


def backup_and_apply(fault: EnvironmentFault, ctx: ApplyContext) -> list[Backed]:
    """What the session does before a fault acts: checksum + backup every target, then apply."""
    settings = get_settings()
    lease = ctx.extra.setdefault("backup_id", "lease0001")
    backed = []
    for index, target in enumerate(fault.backup_targets(ctx)):
        store = get_store(target, settings)
        before = store.checksum(target)
        ref = store.backup(target, lease if index == 0 else f"{lease}x{index}")
        backed.append(Backed(store, target, ref, before))
    fault.apply(ctx)
    return backed


def restore_all(backed: list[Backed]) -> None:
    """Restore twice (idempotent), verify the checksum, discard, and check the copy is gone."""
    for item in backed:
        item.store.restore(item.target, item.ref)
        item.store.restore(item.target, item.ref)
        assert item.store.checksum(item.target) == item.before
        item.store.discard(item.ref)
        assert not backup_exists(item.store, item.ref)


def backup_exists(store: Any, ref: dict[str, Any]) -> bool:
    if ref["kind"] == "local":
        return Path(ref["folder"]).exists()
    if ref["kind"] == "s3":
        listed = store.client.list_objects_v2(Bucket=ref["bucket"], Prefix=ref["prefix"])
        return listed.get("KeyCount", 0) > 0
    engine = sa.create_engine(ref["url"])
    try:
        return sa.inspect(engine).has_table(ref["backup_table"])
    finally:
        engine.dispose()


def ctx_for(**extra: Any) -> ApplyContext:
    return ApplyContext(seed=7, ds="2024-01-02", run_id="r1", s3_endpoint_url=None, extra=extra)


# ------------------------------------------------------------------------------------- params
def test_registered_and_validated(tmp_path: Path) -> None:
    assert get_fault_class("upstream_outage") is UpstreamOutage
    fault = UpstreamOutage(target={"url": "sqlite:///x.db", "table": "t"}, mode="truncated")
    assert fault.target_obj.kind == "sql" and fault.spec()["target"]["table"] == "t"
    for bad in ({"mode": "gone"}, {"keep_fraction": 1.5}, {"delay_s": 0}, {"target": ""}):
        with pytest.raises(ValidationError):
            UpstreamOutage(**{"target": str(tmp_path), **bad})


# ---------------------------------------------------------------------------------- local files
@pytest.fixture
def parquet_dir(tmp_path: Path, mlchaos_home: Path) -> Path:
    root = tmp_path / "raw" / "events"
    root.mkdir(parents=True)
    FRAME.iloc[:6].to_parquet(root / "part-0.parquet", index=False)
    FRAME.iloc[6:].to_parquet(root / "part-1.parquet", index=False)
    FRAME.to_csv(root / "_all.csv", index=False)  # "_" names are skipped by pyarrow datasets
    return root


def test_local_missing_and_late(parquet_dir: Path) -> None:
    for mode in ("missing", "late"):
        fault = UpstreamOutage(target=str(parquet_dir), mode=mode, delay_s=30)
        backed = backup_and_apply(fault, ctx_for())
        with pytest.raises(FileNotFoundError):
            pd.read_parquet(parquet_dir)
        assert fault.restore_after_s() == (30 if mode == "late" else None)
        restore_all(backed)
    assert len(pd.read_parquet(parquet_dir)) == 10


def test_local_empty_keeps_schema(parquet_dir: Path) -> None:
    fault = UpstreamOutage(target=str(parquet_dir), mode="empty")
    backed = backup_and_apply(fault, ctx_for())
    empty = pd.read_parquet(parquet_dir)
    assert len(empty) == 0 and list(empty.columns) == list(FRAME.columns)
    assert (parquet_dir / "_all.csv").read_text() == "id,amount,city\n"
    restore_all(backed)


def test_local_truncated(parquet_dir: Path) -> None:
    fault = UpstreamOutage(target=str(parquet_dir), mode="truncated", keep_fraction=0.5)
    backed = backup_and_apply(fault, ctx_for())
    assert len(pd.read_parquet(parquet_dir)) == 3 + 2
    assert len(pd.read_csv(parquet_dir / "_all.csv")) == 5
    restore_all(backed)


def test_local_error_file_becomes_dir(parquet_dir: Path) -> None:
    path = parquet_dir / "part-0.parquet"
    fault = UpstreamOutage(target=str(path), mode="error")
    backed = backup_and_apply(fault, ctx_for())
    with pytest.raises(IsADirectoryError):
        path.open("rb")
    with pytest.raises(ValueError):  # pyarrow must not read it as an empty dataset
        pd.read_parquet(path)
    restore_all(backed)
    assert len(pd.read_parquet(path)) == 6


def test_local_error_dir_becomes_file(parquet_dir: Path) -> None:
    fault = UpstreamOutage(target=str(parquet_dir), mode="error")
    backed = backup_and_apply(fault, ctx_for())
    with pytest.raises(NotADirectoryError):
        os.listdir(parquet_dir)
    with pytest.raises(NotADirectoryError):
        pd.read_csv(parquet_dir / "_all.csv")
    restore_all(backed)


def test_local_restore_after_half_done_apply(parquet_dir: Path) -> None:
    fault = UpstreamOutage(target=str(parquet_dir), mode="empty")
    settings = get_settings()
    target = fault.target_obj
    store = get_store(target, settings)
    before = store.checksum(target)
    ref = store.backup(target, "half1")
    # killed after rewriting one of three files
    UpstreamOutage(target=str(parquet_dir / "part-1.parquet"), mode="empty").apply(ctx_for())
    restore_all([Backed(store, target, ref, before)])


# ------------------------------------------------------------------------------------------ S3
@pytest.fixture
def s3_events(s3_client: Any, s3_bucket: str, mlchaos_home: Path) -> str:
    for name, part in (("part-0.parquet", FRAME.iloc[:6]), ("part-1.parquet", FRAME.iloc[6:])):
        buf = io.BytesIO()
        part.to_parquet(buf, index=False)
        s3_client.put_object(Bucket=s3_bucket, Key=f"events/{name}", Body=buf.getvalue())
    s3_client.put_object(Bucket=s3_bucket, Key="elsewhere.csv", Body=b"a\n1\n")
    return f"s3://{s3_bucket}/events/"


def read_s3_parquet(client: Any, uri: str) -> pd.DataFrame:
    bucket, prefix = uri[5:].split("/", 1)
    keys = [
        o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    ]
    frames = [
        pd.read_parquet(io.BytesIO(client.get_object(Bucket=bucket, Key=k)["Body"].read()))
        for k in keys
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("mode", ["missing", "late"])
def test_s3_missing_and_late(s3_client: Any, s3_events: str, mode: str) -> None:
    fault = UpstreamOutage(target=s3_events + "part-0.parquet", mode=mode)
    backed = backup_and_apply(fault, ctx_for())
    bucket = fault.target_obj.bucket
    with pytest.raises(ClientError) as err:
        s3_client.get_object(Bucket=bucket, Key="events/part-0.parquet")
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    restore_all(backed)
    assert len(read_s3_parquet(s3_client, s3_events)) == 10


@pytest.mark.parametrize(("mode", "rows"), [("empty", 0), ("truncated", 3 + 2)])
def test_s3_empty_and_truncated(s3_client: Any, s3_events: str, mode: str, rows: int) -> None:
    fault = UpstreamOutage(target=s3_events, mode=mode)
    backed = backup_and_apply(fault, ctx_for())
    faulted = read_s3_parquet(s3_client, s3_events)
    assert len(faulted) == rows and list(faulted.columns) == list(FRAME.columns)
    restore_all(backed)
    assert (
        s3_client.list_objects_v2(Bucket=fault.target_obj.bucket, Prefix=BACKUP_PREFIX).get(
            "KeyCount"
        )
        == 0
    )


def test_s3_error_is_hook_only(s3_client: Any, s3_events: str) -> None:
    fault = UpstreamOutage(target=s3_events, mode="error", error_code="AccessDenied")
    ctx = ctx_for()
    assert fault.backup_targets(ctx) == [] and fault.touched_targets(ctx) == [fault.target_obj]
    assert fault.hook(ctx) == {
        "kind": "s3_error",
        "bucket": fault.target_obj.bucket,
        "prefix": "events/",
        "code": "AccessDenied",
        "status": 403,
    }
    store = get_store(fault.target_obj)
    before = store.checksum(fault.target_obj)
    assert fault.apply(ctx)["hook"] is True
    assert store.checksum(fault.target_obj) == before


def test_s3_restore_after_half_done_apply(s3_client: Any, s3_events: str) -> None:
    fault = UpstreamOutage(target=s3_events, mode="missing")
    target = fault.target_obj
    store = get_store(target)
    before = store.checksum(target)
    ref = store.backup(target, "half2")
    s3_client.delete_object(Bucket=target.bucket, Key="events/part-1.parquet")  # killed midway
    restore_all([Backed(store, target, ref, before)])


# ----------------------------------------------------------------------------------------- SQL
@pytest.fixture(params=["sqlite", "postgresql"])
def sql_events(request: pytest.FixtureRequest, tmp_path: Path, mlchaos_home: Path) -> str:
    url = (
        f"sqlite:///{tmp_path / 'src.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    frame = FRAME.assign(ds=["2024-01-01"] * 4 + ["2024-01-02"] * 6)
    engine = sa.create_engine(url)
    frame.to_sql("events", engine, index=False)
    engine.dispose()
    return url


def count_rows(url: str, where: str = "") -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(f"SELECT COUNT(*) FROM events {where}").scalar_one()
    finally:
        engine.dispose()


@pytest.mark.parametrize("mode", ["missing", "late"])
def test_sql_missing_and_late(sql_events: str, mode: str) -> None:
    fault = UpstreamOutage(target={"url": sql_events, "table": "events"}, mode=mode)
    backed = backup_and_apply(fault, ctx_for(backup_id="lease42"))
    with pytest.raises(sa.exc.DBAPIError):
        count_rows(sql_events)
    restore_all(backed)
    assert count_rows(sql_events) == 10
    engine = sa.create_engine(sql_events)
    assert not sa.inspect(engine).has_table(stash_table_name("lease42"))
    engine.dispose()


@pytest.mark.parametrize(
    ("mode", "where", "expected"),
    [
        ("empty", None, 0),
        ("truncated", None, 5),
        ("empty", {"ds": "2024-01-02"}, 4),
        ("missing", {"ds": "2024-01-02"}, 4),
        ("truncated", {"ds": "2024-01-02"}, 4 + 3),
    ],
)
def test_sql_rows(sql_events: str, mode: str, where: dict[str, str] | None, expected: int) -> None:
    fault = UpstreamOutage(target={"url": sql_events, "table": "events", "where": where}, mode=mode)
    backed = backup_and_apply(fault, ctx_for())
    assert count_rows(sql_events) == expected
    restore_all(backed)
    assert count_rows(sql_events) == 10


def test_sql_error_is_hook_only(sql_events: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fault = UpstreamOutage(target={"url": sql_events, "table": "events"}, mode="error")
    spec = fault.hook(ctx_for())
    assert spec is not None and spec["kind"] == "sql_error" and spec["table"] == "events"
    assert fault.backup_targets(ctx_for()) == []
    with pytest.raises(ValueError, match="literal password"):
        UpstreamOutage(target={"url": "postgresql://u:hunter2@db/x", "table": "t"}, mode="error")
    monkeypatch.setenv("SECRET_DB_URL", "postgresql://u:hunter2@db/x")
    secret = UpstreamOutage(target={"url": "${SECRET_DB_URL}", "table": "t"}, mode="error")
    assert "hunter2" not in str(secret.hook(ctx_for()))
    assert "hunter2" not in secret.model_dump_json()
    fault.apply(ctx_for())
    assert count_rows(sql_events) == 10


def test_sql_restore_after_half_done_apply(sql_events: str) -> None:
    target = UpstreamOutage(target={"url": sql_events, "table": "events"}).target_obj
    store = get_store(target)
    before = store.checksum(target)
    ref = store.backup(target, "half3")
    store.stash(target, "half3")
    engine = sa.create_engine(sql_events)  # a reader re-created the table before the restore
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE events (id INTEGER)")
    engine.dispose()
    restore_all([Backed(store, target, ref, before)])
    engine = sa.create_engine(sql_events)
    assert not sa.inspect(engine).has_table(backup_table_name("half3"))
    engine.dispose()
