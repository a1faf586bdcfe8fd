"""stale_partition_replay on local dirs, moto S3 and SQL partitions (SQLite + PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec
from mlchaos_orchestration.core.session import apply_fault, restore_lease
from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import MlchaosError, SpecError
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.catalog import get_fault_class
from mlchaos_orchestration.faults.environment.stale import StalePartitionReplay, shift_series
from mlchaos_orchestration.stores.base import get_store

DAY1, DAY2 = "2024-03-09", "2024-03-10"


def frame_for(ds: str, n: int) -> pd.DataFrame:
    start = pd.Timestamp(ds)
    return pd.DataFrame(
        {
            "id": range(n),
            "ts": pd.date_range(start, periods=n, freq="h"),
            "when": [f"{ds}T0{i}:00:00+00:00" for i in range(n)],
            "value": [float(i) for i in range(n)],
        }
    )


def ctx(ds: str | None = DAY2) -> ApplyContext:
    return ApplyContext(seed=1, ds=ds, run_id="r1", extra={"backup_id": "stale01"})


class Replayed:
    """A fault applied through the real session (lease + ledger + backups); ``undo`` restores."""

    def __init__(self, fault: StalePartitionReplay, allow: str):
        self.ledger = Ledger()
        self.target = fault.backup_targets(ctx())[0]
        self.before = get_store(self.target).checksum(self.target)
        self.applied = apply_fault(
            self.ledger, fault, ctx(), run_id="run1", safety=SafetySpec(allowed_targets=[allow])
        )

    def undo(self) -> None:
        """Restore, then check the checksum, the discarded backups, and a repeat restore."""
        outcome = restore_lease(self.ledger, self.applied.lease.id)
        assert outcome.restored, outcome.error
        assert get_store(self.target).checksum(self.target) == self.before
        assert {b.state for b in self.ledger.backups(self.applied.lease.id)} == {"discarded"}
        assert restore_lease(self.ledger, self.applied.lease.id).restored
        assert not backup_copies(self.target)


def backup_copies(target: Target) -> list[str]:
    """Backup copies left in the store of ``target`` (files, objects or tables)."""
    store = get_store(target)
    if target.kind == "local":
        return [p.name for p in store.backup_root.glob("*")]
    if target.kind == "s3":
        listed = store.client.list_objects_v2(Bucket=target.bucket, Prefix=".mlchaos-backups/")
        return [o["Key"] for o in listed.get("Contents", [])]
    engine = sa.create_engine(target.location)
    try:
        return [t for t in sa.inspect(engine).get_table_names() if t.startswith("mlchaos_")]
    finally:
        engine.dispose()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------- params
def test_params_and_blast_radius(tmp_path: Path) -> None:
    assert get_fault_class("stale_partition_replay") is StalePartitionReplay
    fault = StalePartitionReplay(template=str(tmp_path / "ds={ds}") + "/", lag_days=2)
    assert fault.dates(ctx()) == (DAY2, "2024-03-08")
    assert [t.location for t in fault.backup_targets(ctx())] == [str(tmp_path / f"ds={DAY2}")]
    assert len(fault.touched_targets(ctx())) == 2
    with pytest.raises(SpecError):
        fault.dates(ctx(None))
    assert StalePartitionReplay(template="/d/{ds}", ds="2024-01-05").dates(ctx(None))[0] == (
        "2024-01-05"
    )
    for bad in (
        {"template": "/no/placeholder"},
        {"template": "/d/{ds}", "lag_days": 0},
        {"table": "t", "url": "sqlite://"},
        {"template": "/d/{ds}", "ds": "tomorrow"},
        {"template": "/d/{ds}", "shift_timestamps": True},
    ):
        with pytest.raises(ValidationError):
            StalePartitionReplay(**bad)


def test_shift_series_kinds() -> None:
    utc = pd.Series(pd.to_datetime(["2024-01-31T23:00:00Z", None], utc=True))
    assert shift_series(utc, 1).iloc[0] == pd.Timestamp("2024-02-01T23:00:00Z")
    iso = pd.Series(["2024-02-28 10:00:00+01:00", None, "2024-12-31"], dtype=object)
    assert list(shift_series(iso, 1)) == ["2024-02-29 10:00:00+01:00", None, "2025-01-01"]
    dates = pd.Series([dt.date(2024, 1, 1), None], dtype=object)
    assert shift_series(dates, 2).iloc[0] == dt.date(2024, 1, 3)
    epoch_s = pd.Series([1_700_000_000, 1_700_000_100])
    assert list(shift_series(epoch_s, 1) - epoch_s) == [86400, 86400]
    epoch_ms = pd.Series([1_700_000_000_000], dtype=object)
    assert shift_series(epoch_ms, 1).iloc[0] == 1_700_000_000_000 + 86_400_000
    with pytest.raises(SpecError):
        shift_series(pd.Series(["not a date"]), 1)
    with pytest.raises(SpecError):
        shift_series(pd.Series([True, False]), 1)


# ---------------------------------------------------------------------------------- local files
@pytest.fixture
def local_parts(tmp_path: Path, mlchaos_home: Path) -> Path:
    root = tmp_path / "events"
    for ds, n in ((DAY1, 5), (DAY2, 8)):
        part = root / f"ds={ds}"
        part.mkdir(parents=True)
        frame_for(ds, n).to_parquet(part / "part-0.parquet", index=False)
        frame_for(ds, n).to_csv(part / "_side.csv", index=False)
    (root / f"ds={DAY2}" / "part-1.parquet").write_bytes(
        (root / f"ds={DAY2}" / "part-0.parquet").read_bytes()
    )
    return root


def test_local_replay_is_byte_copy(local_parts: Path) -> None:
    fault = StalePartitionReplay(template=str(local_parts / "ds={ds}"))
    source_before = get_store(fault.partition(DAY1)).checksum(fault.partition(DAY1))
    run = Replayed(fault, str(local_parts))
    old, new = local_parts / f"ds={DAY1}", local_parts / f"ds={DAY2}"
    assert sorted(p.name for p in new.iterdir()) == sorted(p.name for p in old.iterdir())
    for name in ("part-0.parquet", "_side.csv"):
        assert sha((new / name).read_bytes()) == sha((old / name).read_bytes())
    run.undo()
    assert len(pd.read_parquet(new)) == 16
    assert get_store(fault.partition(DAY1)).checksum(fault.partition(DAY1)) == source_before


def test_local_replay_with_shift(local_parts: Path) -> None:
    fault = StalePartitionReplay(
        template=str(local_parts / "ds={ds}") + "/",
        shift_timestamps=True,
        timestamp_columns=["ts", "when"],
    )
    run = Replayed(fault, str(local_parts))
    replayed = pd.read_parquet(local_parts / f"ds={DAY2}")
    expected = frame_for(DAY1, 5)
    assert len(replayed) == 5
    assert (replayed["ts"] == expected["ts"] + pd.Timedelta(days=1)).all()
    assert replayed["when"].str.startswith(DAY2).all()
    pd.testing.assert_series_equal(replayed["value"], expected["value"])
    side = pd.read_csv(local_parts / f"ds={DAY2}" / "_side.csv")
    assert side["ts"].str.startswith(DAY2).all()
    run.undo()


def test_local_missing_source_is_clear_error(local_parts: Path) -> None:
    fault = StalePartitionReplay(template=str(local_parts / "ds={ds}"), lag_days=5)
    target = fault.backup_targets(ctx())[0]
    before = get_store(target).checksum(target)
    with pytest.raises(MlchaosError, match="source partition"):
        apply_fault(
            Ledger(),
            fault,
            ctx(),
            run_id="run1",
            safety=SafetySpec(allowed_targets=[str(local_parts)]),
        )
    assert get_store(target).checksum(target) == before
    assert not backup_copies(target)


# ------------------------------------------------------------------------------------------ S3
def test_s3_replay_plain_and_shifted(s3_client: Any, s3_bucket: str, mlchaos_home: Path) -> None:
    for ds, n in ((DAY1, 4), (DAY2, 7)):
        buf = io.BytesIO()
        frame_for(ds, n).to_parquet(buf, index=False)
        s3_client.put_object(Bucket=s3_bucket, Key=f"events/ds={ds}/p.parquet", Body=buf.getvalue())
    s3_client.put_object(Bucket=s3_bucket, Key=f"events/ds={DAY2}/extra.parquet", Body=b"x")
    template = f"s3://{s3_bucket}/events/ds={{ds}}/"

    def read(key: str) -> bytes:
        return s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()

    for shift in (False, True):
        fault = StalePartitionReplay(
            template=template, shift_timestamps=shift, timestamp_columns=["ts"] if shift else []
        )
        run = Replayed(fault, f"s3://{s3_bucket}")
        listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=f"events/ds={DAY2}/")
        assert [o["Key"] for o in listed["Contents"]] == [f"events/ds={DAY2}/p.parquet"]
        new, old = read(f"events/ds={DAY2}/p.parquet"), read(f"events/ds={DAY1}/p.parquet")
        if shift:
            got, src = pd.read_parquet(io.BytesIO(new)), pd.read_parquet(io.BytesIO(old))
            assert (got["ts"] - src["ts"] == pd.Timedelta(days=1)).all()
        else:
            assert sha(new) == sha(old)
        run.undo()
        assert len(pd.read_parquet(io.BytesIO(read(f"events/ds={DAY2}/p.parquet")))) == 7


# ----------------------------------------------------------------------------------------- SQL
@pytest.fixture(params=["sqlite", "postgresql"])
def sql_parts(request: pytest.FixtureRequest, tmp_path: Path, mlchaos_home: Path) -> str:
    url = (
        f"sqlite:///{tmp_path / 'src.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    frames = [
        frame_for(ds, n).assign(ds=ds, epoch=lambda f: f["id"] + 1_700_000_000)
        for ds, n in ((DAY1, 3), (DAY2, 6), ("2024-03-11", 2))
    ]
    engine = sa.create_engine(url)
    pd.concat(frames, ignore_index=True).to_sql("events", engine, index=False)
    engine.dispose()
    return url


def read_events(url: str, ds: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        query = sa.text("SELECT * FROM events WHERE ds = :ds ORDER BY id")
        return pd.read_sql(query, engine, params={"ds": ds})
    finally:
        engine.dispose()


@pytest.mark.parametrize("shift", [False, True])
def test_sql_replay(sql_parts: str, shift: bool) -> None:
    fault = StalePartitionReplay(
        table="events",
        url=sql_parts,
        partition_column="ds",
        shift_timestamps=shift,
        timestamp_columns=["ts", "epoch"],
    )
    whole = fault.partition(DAY1).model_copy(update={"where": None})
    whole_before = get_store(whole).checksum(whole)
    run = Replayed(fault, f"{sql_parts}#events")
    old, new = read_events(sql_parts, DAY1), read_events(sql_parts, DAY2)
    assert len(new) == 3
    if shift:
        assert (pd.to_datetime(new["ts"]) - pd.to_datetime(old["ts"]) == pd.Timedelta(days=1)).all()
        assert (new["epoch"] - old["epoch"] == 86400).all()
    else:
        pd.testing.assert_frame_equal(new.drop(columns="ds"), old.drop(columns="ds"))
    assert len(read_events(sql_parts, "2024-03-11")) == 2  # other partitions untouched
    run.undo()
    assert get_store(whole).checksum(whole) == whole_before


def test_sql_missing_source(sql_parts: str) -> None:
    fault = StalePartitionReplay(table="events", url=sql_parts, partition_column="ds", lag_days=9)
    with pytest.raises(MlchaosError, match="source partition"):
        fault.apply(ctx())
    assert len(read_events(sql_parts, DAY2)) == 6
