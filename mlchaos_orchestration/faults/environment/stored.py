"""Apply a data fault to *stored* data (files, S3 objects, a SQL table or partition).

Orchestrators inject data faults between tasks, where the data lives in storage, not in memory.
``StoredDataFault`` wraps any registered data fault: the session backs the target up, this reads
it, applies the data fault and writes it back in the same format; restore is the byte-exact
backup restore. It is an adapter, not a catalog entry, so it is not registered.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.faults.base import (
    ApplyContext,
    DataFault,
    DataFaultResult,
    EnvironmentFault,
)


class StoredDataFault(EnvironmentFault):
    """Apply a data fault to the data stored at a target."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: ClassVar[str] = "stored_data"

    inner: DataFault
    target: Any

    @property
    def target_obj(self) -> Target:
        return Target.parse(self.target)

    def spec(self) -> dict[str, Any]:
        return {**self.inner.spec(), "target": self.target_obj.describe()}

    def backup_targets(self, ctx: ApplyContext) -> list[Target]:
        return [self.target_obj]

    def apply(self, ctx: ApplyContext) -> dict[str, Any]:
        target = self.target_obj
        if target.kind == "sql":
            results = [_apply_sql(self.inner, target, ctx.seed)]
        elif target.kind == "s3":
            results = _apply_s3(self.inner, target, ctx)
        else:
            results = _apply_local(self.inner, target, ctx.seed)
        return {
            "fault": self.inner.name,
            "rows_changed": int(sum(len(r.rows) for r in results)),
            "columns": sorted({c for r in results for c in r.columns}),
            "parts": len(results),
        }


def _apply_local(fault: DataFault, target: Target, seed: int) -> list[DataFaultResult]:
    from pathlib import Path

    from mlchaos_orchestration.core import formats
    from mlchaos_orchestration.stores.local import _write_atomic

    root = Path(target.location)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    results = []
    for i, path in enumerate(f for f in files if _is_tabular(f.name)):
        fmt = formats.detect_format(path)
        result = fault.apply(formats.read_frame(path, fmt), seed + i)
        _write_atomic(path, formats.write_frame(result.frame, fmt))
        results.append(result)
    return results


def _apply_s3(fault: DataFault, target: Target, ctx: ApplyContext) -> list[DataFaultResult]:
    import boto3

    from mlchaos_orchestration.core import formats

    client = boto3.client("s3", endpoint_url=ctx.s3_endpoint_url)
    keys = [target.key]
    if not target.key or target.key.endswith("/"):
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=target.bucket, Prefix=target.key
        )
        keys = sorted(
            o["Key"]
            for page in pages
            for o in page.get("Contents", [])
            if ".mlchaos-backups/" not in o["Key"]
        )
    results = []
    for i, key in enumerate(k for k in keys if _is_tabular(k)):
        fmt = formats.detect_format(key)
        body = client.get_object(Bucket=target.bucket, Key=key)["Body"].read()
        result = fault.apply(formats.read_frame(body, fmt), ctx.seed + i)
        body = formats.write_frame(result.frame, fmt)
        client.put_object(Bucket=target.bucket, Key=key, Body=body)
        results.append(result)
    return results


def _apply_sql(fault: DataFault, target: Target, seed: int) -> DataFaultResult:
    import pandas as pd
    import sqlalchemy as sa

    assert target.table is not None  # a SQL target of a data fault names its table
    engine = sa.create_engine(target.connect_url())
    try:
        table = sa.Table(target.table, sa.MetaData(), autoload_with=engine)
        query = sa.select(table)
        for column, value in (target.where or {}).items():
            query = query.where(table.c[column] == value)
        with engine.connect() as conn:
            frame = pd.read_sql(query, conn)
        result = fault.apply(frame, seed)
        with engine.begin() as conn:
            delete = sa.delete(table)
            for column, value in (target.where or {}).items():
                delete = delete.where(table.c[column] == value)
            conn.execute(delete)
            rows = result.frame.astype(object).where(result.frame.notna(), None)
            records = rows.to_dict(orient="records")
            if records:
                keep = [c for c in result.frame.columns if c in table.c]
                conn.execute(sa.insert(table), [{k: r[k] for k in keep} for r in records])
        return result
    finally:
        engine.dispose()


def _is_tabular(name: str) -> bool:
    return name.lower().endswith((".csv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json"))
