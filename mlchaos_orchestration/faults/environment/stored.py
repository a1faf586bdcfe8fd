"""Apply a data fault to *stored* data (files, S3 objects, a SQL table or partition).

Orchestrators inject data faults between tasks, where the data lives in storage, not in memory.
``StoredDataFault`` wraps any registered data fault: the session backs the target up, this reads
it, applies the data fault and writes it back in the same format; restore is the byte-exact
backup restore. It is an adapter, not a catalog entry, so it is not registered.

On SQL tables the schema faults change the schema for real: ``drop_column`` / ``rename_column``
build the table anew without / under the new column name, ``type_flip`` loosens the column's type
(SQLite: untyped column, the sampled cells become text; PostgreSQL's strict typing cannot hold a
mixed column, so the whole column becomes ``text``). The original table is stashed and comes back
on restore (see :meth:`mlchaos_orchestration.stores.sql.SqlStore.reshape`).

``apply`` reports ``rows_changed`` (rows the fault reached: changed cells, or every row a schema
change reshaped; ``0`` when it changed nothing), ``columns``, ``rows_read`` and ``clean_profile``
(:func:`~mlchaos_orchestration.gates.mutation.profile_frame` of the first file / object / table
before the fault: the report's suggestion for a surviving fault takes its bounds from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ConfigDict

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import TargetError
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

    def backup_options(self, target: Target) -> dict[str, Any]:
        """A local Parquet dataset that streams is backed up by moving its originals aside."""
        from pathlib import Path

        from mlchaos_orchestration.stores.parquet_swap import streams_local

        if target.kind == "local" and streams_local(self.inner, Path(target.location)):
            return {"move": True}
        return {}

    def apply(self, ctx: ApplyContext) -> dict[str, Any]:
        target = self.target_obj
        extra: dict[str, Any] = {}
        if target.kind == "sql" and self.inner.name in SQL_SCHEMA_FAULTS:
            part, extra = _reshape_sql(self.inner, target, ctx)
            parts = [part]
        elif target.kind == "sql":
            parts = [_apply_sql(self.inner, target, ctx.seed)]
        elif target.kind == "s3":
            parts = _apply_s3(self.inner, target, ctx)
        else:
            parts = _apply_local(self.inner, target, ctx)
        return {
            "fault": self.inner.name,
            "rows_changed": int(sum(p.rows_changed for p in parts)),
            "rows_read": int(sum(p.rows_read for p in parts)),
            "columns": sorted({str(c) for p in parts for c in p.columns}),
            "parts": len(parts),
            **({"clean_profile": parts[0].profile} if parts and parts[0].profile else {}),
            **extra,
        }


#: data faults that change a SQL table's schema (not only its rows)
SQL_SCHEMA_FAULTS = frozenset({"drop_column", "rename_column", "type_flip"})


@dataclass
class _Part:
    """What a data fault did to one file, object or table."""

    rows_changed: int
    rows_read: int
    columns: list[str]
    profile: dict[str, Any] | None = None  #: of the clean data, before the fault

    @classmethod
    def of(cls, result: DataFaultResult, clean: Any) -> _Part:
        """What ``result`` did to the frame ``clean``."""
        from mlchaos_orchestration.gates.mutation import profile_frame

        try:
            profile = profile_frame(clean)
        except Exception:  # noqa: BLE001 - a profile is a hint for suggestions, never a failure
            profile = None
        return cls(result.rows_changed, len(clean), [str(c) for c in result.columns], profile)


def _streamed(outcome: Any) -> list[_Part]:
    return [_Part(outcome.rows_changed, outcome.rows_read, [str(c) for c in outcome.columns])]


def _apply_local(fault: DataFault, target: Target, ctx: ApplyContext) -> list[_Part]:
    from pathlib import Path

    from mlchaos_orchestration.core import formats
    from mlchaos_orchestration.stores import parquet_swap
    from mlchaos_orchestration.stores.local import _write_atomic

    root = Path(target.location)
    ref = (ctx.extra.get("backup_refs") or {}).get(target.lock_key()) or {}
    moved = ref.get("mode") == parquet_swap.MOVE  # the originals must be renamed, never replaced
    if moved or parquet_swap.streams_local(fault, root):  # row group by row group
        folder = Path(ref["folder"]) if moved else None
        return _streamed(parquet_swap.stream_local(fault, target, ctx.seed, folder))
    seed = ctx.seed
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    tabular = [f for f in files if _is_tabular(f.name)]
    _refuse_typeless(fault, [str(f) for f in tabular])
    results = []
    for i, path in enumerate(tabular):
        fmt = formats.detect_format(path)
        frame = formats.read_frame(path, fmt)
        result = fault.apply(frame, seed + i)
        out, part = _fit_format(fault, frame, result, fmt)
        _write_atomic(path, formats.write_frame(out, fmt))
        results.append(part)
    return results


def _apply_s3(fault: DataFault, target: Target, ctx: ApplyContext) -> list[_Part]:
    import boto3

    from mlchaos_orchestration.core import formats
    from mlchaos_orchestration.settings import get_settings
    from mlchaos_orchestration.stores import parquet_swap

    endpoint = ctx.s3_endpoint_url or get_settings().s3_endpoint_url
    client = boto3.client("s3", endpoint_url=endpoint)
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
    tabular = [k for k in keys if _is_tabular(k)]
    _refuse_typeless(fault, [f"s3://{target.bucket}/{k}" for k in tabular])
    sizes = {k: _size(client, target.bucket, k) for k in tabular}
    if parquet_swap.streams_s3(fault, sizes):  # row group by row group, never the whole object
        return _streamed(parquet_swap.stream_s3(fault, target, tabular, ctx))
    results = []
    for i, key in enumerate(tabular):
        fmt = formats.detect_format(key)
        body = client.get_object(Bucket=target.bucket, Key=key)["Body"].read()
        frame = formats.read_frame(body, fmt)
        result = fault.apply(frame, ctx.seed + i)
        out, part = _fit_format(fault, frame, result, fmt)
        client.put_object(Bucket=target.bucket, Key=key, Body=formats.write_frame(out, fmt))
        results.append(part)
    return results


def _size(client: Any, bucket: str, key: str) -> int:
    return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])


def _refuse_typeless(fault: DataFault, names: list[str]) -> None:
    """``type_flip`` cannot be stored in CSV: refuse before any file is touched."""
    csv = [n for n in names if n.lower().endswith(".csv")]
    if fault.name == "type_flip" and csv:
        raise TargetError(
            f"type_flip on {csv[0]}: CSV stores no types (a number written as text reads back "
            "as the number), so the fault would silently do nothing: refused; use it on "
            "parquet / JSON data or a SQL table"
        )


def _fit_format(
    fault: DataFault, frame: Any, result: DataFaultResult, fmt: str
) -> tuple[Any, _Part]:
    """The frame to write and what it changes once stored in ``fmt``.

    Parquet (Arrow) cannot hold a column of numbers and strings: a ``type_flip`` column is
    stored as a string column, so every present value of it changed type.
    """
    part = _Part.of(result, frame)
    if fault.name != "type_flip" or fmt != "parquet":
        return result.frame, part
    from mlchaos_orchestration.faults.data.arrow import as_text

    columns = [c for c in result.columns if c in result.frame]
    out = result.frame.assign(**{str(c): as_text(result.frame[c]) for c in columns})
    present = frame[columns].notna().any(axis=1) if columns else frame.index.isna()
    part.rows_changed = int(present.sum())
    return out, part


def _apply_sql(fault: DataFault, target: Target, seed: int) -> _Part:
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
        return _Part.of(result, frame)
    finally:
        engine.dispose()


def _reshape_sql(
    fault: DataFault, target: Target, ctx: ApplyContext
) -> tuple[_Part, dict[str, Any]]:
    """A schema fault on a SQL table: the schema really changes (see ``SqlStore.reshape``)."""
    import pandas as pd

    from mlchaos_orchestration.faults.environment.outage import backup_id_of
    from mlchaos_orchestration.stores.sql import SqlStore

    store = SqlStore()
    with store._table(target) as t:
        if not t.exists():
            raise TargetError(f"{target.describe()}: table does not exist")
        current = t.columns()
    # validate the fault against the table's columns on an empty frame (same errors as on data)
    probe = fault.apply(pd.DataFrame({c: pd.Series([], dtype=object) for c in current}), ctx.seed)
    flip = None
    if fault.name == "type_flip":
        flipped = set(getattr(fault, "columns", None) or [])
        plan = [(c, c, "text" if c in flipped else "keep") for c in current]
        flip = _cell_flipper(fault, ctx.seed)
    else:
        renamed = {new: old for old, new in (probe.details.get("mapping") or {}).items()}
        plan = [(str(c), renamed.get(str(c), str(c)), "keep") for c in probe.frame.columns]
    done = store.reshape(target, backup_id_of(ctx), plan, flip=flip)
    part = _Part(done["rows_changed"], done["rows"], [str(c) for c in probe.columns])
    change: dict[str, Any] = {"before": done["before"], "after": done["after"]}
    if fault.name == "type_flip" and done["dialect"] != "sqlite":
        # strict typing: a column cannot hold numbers and strings, so all of it became text
        change["whole_column"] = True
    return part, {"schema_change": change, "stashed_as": done["stashed_as"]}


def _cell_flipper(fault: DataFault, seed: int) -> Any:
    """``flip`` for ``SqlStore.reshape``: the fault's sampled cells, as their string forms."""

    def flip(frame: Any) -> dict[str, dict[int, Any]]:
        result = fault.apply(frame.reset_index(drop=True), seed)
        out: dict[str, dict[int, Any]] = {}
        for column in frame.columns:
            if column not in result.frame:
                continue
            old, new = frame[column].to_numpy(), result.frame[column].to_numpy()
            cells = {}
            for pos in result.rows:
                before, after = old[pos], new[pos]
                if before is not None and isinstance(after, str) and not isinstance(before, str):
                    cells[int(frame.index[pos])] = after
            out[str(column)] = cells
        return out

    return flip


def _is_tabular(name: str) -> bool:
    return name.lower().endswith((".csv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json"))
