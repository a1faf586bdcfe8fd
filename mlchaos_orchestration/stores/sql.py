"""SQL tables (optionally one ``where`` partition): backup tables and single-transaction restore.

Backup: ``CREATE TABLE mlchaos_bak_<id> AS SELECT * FROM t [WHERE ...]`` (atomic, so a backup table
that exists is complete). Restore, in one transaction: rename a stash table
``mlchaos_stash_<id>`` (left by a ``missing`` outage) back to ``t``, then
``DELETE FROM t [WHERE ...]`` and ``INSERT INTO t (cols) SELECT cols FROM bak``.
Identifiers are validated and quoted by SQLAlchemy; values are always bound parameters.
Works on SQLite (with transactional DDL) and PostgreSQL.

Schema faults (:meth:`SqlStore.reshape`) use the same stash: in one transaction the table is
renamed to ``mlchaos_stash_<id>`` and a new table with the changed schema takes its name; restore
drops it and renames the original back, so column names, types, order, constraints, indexes and
rows come back exactly as they were.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import RestoreError, TargetError
from mlchaos_orchestration.stores.base import Store

if TYPE_CHECKING:  # pragma: no cover
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_MAX_ID = 40


def check_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise TargetError."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise TargetError(f"invalid SQL {what} {name!r}")
    return name


def split_table(name: str) -> tuple[str | None, str]:
    """``"schema.table"`` -> ``("schema", "table")``; ``"table"`` -> ``(None, "table")``."""
    parts = str(name).split(".")
    if len(parts) > 2:
        raise TargetError(f"invalid SQL table {name!r}")
    schema = check_identifier(parts[0], "schema") if len(parts) == 2 else None
    return schema, check_identifier(parts[-1], "table")


def _suffix(backup_id: str) -> str:
    clean = re.sub(r"[^a-z0-9_]", "_", str(backup_id).lower())
    if not clean or len(clean) > _MAX_ID:
        clean = hashlib.sha256(str(backup_id).encode()).hexdigest()[:_MAX_ID]
    return clean


def backup_table_name(backup_id: str) -> str:
    """Name of the backup table for ``backup_id``."""
    return "mlchaos_bak_" + _suffix(backup_id)


def stash_table_name(backup_id: str) -> str:
    """Name a ``missing`` outage renames the table to (restore renames it back)."""
    return "mlchaos_stash_" + _suffix(backup_id)


@contextmanager
def sql_engine(url: str) -> Iterator[Engine]:
    """A short-lived engine (no pool), disposed on exit; SQLite gets transactional DDL."""
    import os

    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    try:
        engine = sa.create_engine(os.path.expandvars(url), poolclass=NullPool)
    except Exception as exc:  # noqa: BLE001 - bad URL or missing driver
        raise TargetError(f"cannot open database: {type(exc).__name__}: {exc}") from None
    if engine.dialect.name == "sqlite":
        # pysqlite only begins transactions before DML; take over so DDL is transactional too
        @sa.event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

    try:
        yield engine
    finally:
        engine.dispose()


class _Table:
    """Names and quoting for one target table inside a connection."""

    def __init__(self, conn: Connection, table: str, where: dict[str, Any] | None):
        self.conn = conn
        self.schema, self.name = split_table(table)
        self.where = {check_identifier(k, "column"): v for k, v in (where or {}).items()}
        self._quote = conn.dialect.identifier_preparer.quote

    def exists(self, name: str | None = None) -> bool:
        import sqlalchemy as sa

        return sa.inspect(self.conn).has_table(name or self.name, schema=self.schema)

    def qualified(self, name: str | None = None) -> str:
        quoted = self._quote(name or self.name)
        return f"{self._quote(self.schema)}.{quoted}" if self.schema else quoted

    def columns(self, name: str | None = None) -> list[str]:
        import sqlalchemy as sa

        cols = sa.inspect(self.conn).get_columns(name or self.name, schema=self.schema)
        return [c["name"] for c in cols]

    def ref(self, name: str | None = None, columns: Sequence[str] = ()) -> sa.TableClause:
        import sqlalchemy as sa

        cols = columns or self.columns(name)
        return sa.table(name or self.name, *(sa.column(c) for c in cols), schema=self.schema)

    def condition(self, tbl: sa.TableClause) -> Any:
        import sqlalchemy as sa

        return sa.and_(
            sa.true(),
            *(tbl.c[k].is_(None) if v is None else tbl.c[k] == v for k, v in self.where.items()),
        )

    def select_all(self, columns: Sequence[str] = ()) -> sa.Select:
        import sqlalchemy as sa

        tbl = self.ref(columns=columns or [*self.columns()])
        return sa.select(*tbl.c).where(self.condition(tbl))

    def declared(self, name: str | None = None) -> list[tuple[str, str, bool]]:
        """``(column, declared type as DDL, NOT NULL)`` of every column, in table order."""
        import sqlalchemy as sa

        name = name or self.name
        dialect = self.conn.dialect.name
        if dialect == "sqlite":
            schema = f"{self._quote(self.schema)}." if self.schema else ""
            rows = self.conn.exec_driver_sql(f"PRAGMA {schema}table_info({self._quote(name)})")
            return [(r[1], str(r[2] or ""), bool(r[3])) for r in rows]
        if dialect == "postgresql":
            rows = self.conn.execute(
                sa.text(
                    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull "
                    "FROM pg_attribute a WHERE a.attrelid = CAST(:rel AS regclass) "
                    "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
                ),
                {"rel": self.qualified(name)},
            )
            return [(r[0], str(r[1]), bool(r[2])) for r in rows]
        cols = sa.inspect(self.conn).get_columns(name, schema=self.schema)
        return [
            (c["name"], c["type"].compile(dialect=self.conn.dialect), not c.get("nullable", True))
            for c in cols
        ]

    def delete_where(self) -> int:
        import sqlalchemy as sa

        tbl = self.ref(columns=list(self.where) or self.columns()[:1])
        return self.conn.execute(sa.delete(tbl).where(self.condition(tbl))).rowcount

    def rename(self, old: str, new: str) -> None:
        self.conn.exec_driver_sql(f"ALTER TABLE {self.qualified(old)} RENAME TO {self._quote(new)}")

    def drop(self, name: str) -> None:
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.qualified(name)}")

    def copy_from(self, source: str, columns: Sequence[str], limit: int | None = None) -> None:
        """``INSERT INTO t (cols) SELECT cols FROM source`` (identity columns keep their values)."""
        import sqlalchemy as sa

        cols = ", ".join(self._quote(check_identifier(c, "column")) for c in columns)
        overriding = " OVERRIDING SYSTEM VALUE" if self.conn.dialect.name == "postgresql" else ""
        tail = " LIMIT :limit" if limit is not None else ""
        self.conn.execute(
            sa.text(
                f"INSERT INTO {self.qualified()} ({cols}){overriding} "
                f"SELECT {cols} FROM {self.qualified(source)}{tail}"
            ),
            {"limit": limit} if limit is not None else {},
        )


def _binary_as_bytes(column: Any) -> Any:
    """Driver buffers (psycopg2 ``memoryview``) hash by content, not by address."""
    present = column.dropna()
    if len(present) and isinstance(present.iloc[0], memoryview):
        return column.map(lambda v: v if v is None else bytes(v))
    return column


_HOMOGENEOUS = frozenset(
    {
        "integer",
        "floating",
        "string",
        "bytes",
        "date",
        "datetime",
        "decimal",
        "boolean",
        "time",
        "timedelta",
        "empty",
    }
)


_NULLABLE_DTYPES = {"integer": "Int64", "floating": "Float64", "boolean": "boolean"}


def _prepare(column: Any) -> tuple[str, Any, Any]:
    """``(kind, hashable column, marks)`` for one object column.

    ``kind`` is the inferred value kind; numbers become nullable arrays so they hash vectorised;
    ``marks`` (or ``None``) keep what value hashing alone misses: NULL vs NaN, and ``1`` vs ``"1"``
    in mixed columns.
    """
    import numpy as np
    import pandas as pd
    from pandas.api.types import infer_dtype

    column = _binary_as_bytes(column)
    kind = infer_dtype(column, skipna=False)
    marks = None
    base = kind
    if kind not in _HOMOGENEOUS:
        is_null = np.equal(column.to_numpy(), None)  # type: ignore[call-overload]
        base = infer_dtype(column[~is_null], skipna=False)
        if base in _HOMOGENEOUS:
            marks = pd.Series(is_null, index=column.index)
        else:
            marks = column.map(lambda v: type(v).__name__)
    if base in _NULLABLE_DTYPES:
        try:
            column = pd.Series(
                pd.array(column.to_numpy(), dtype=_NULLABLE_DTYPES[base]), index=column.index
            )
        except (TypeError, ValueError, OverflowError):  # e.g. integers beyond 64 bits
            pass
    return kind, column, marks


def row_checksum(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Order-independent checksum of ``rows``: sha256 over the sorted per-row hashes + count.

    Each row hashes to 64 bits (pandas' vectorised hashing, plus NULL / type marks where a column
    needs them); the sorted hashes are digested with the column names and kinds.
    """
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(map(tuple, rows), columns=range(len(columns)), dtype=object)
    prepared = [_prepare(frame[i]) for i in frame.columns]
    parts = {str(i): col for i, (_, col, _) in enumerate(prepared)}
    parts.update({f"{i}:marks": m for i, (_, _, m) in enumerate(prepared) if m is not None})
    hashes = pd.util.hash_pandas_object(pd.DataFrame(parts, index=frame.index), index=False)
    hashes = np.sort(hashes.to_numpy(dtype=np.uint64))
    header = [list(columns), [kind for kind, _, _ in prepared]]
    digest = hashlib.sha256(json.dumps(header).encode())
    digest.update(hashes.tobytes())
    return {"rows": digest.hexdigest(), "count": int(len(hashes))}


class SqlStore(Store):
    """Tables reached through SQLAlchemy URLs (SQLite, PostgreSQL)."""

    @contextmanager
    def _table(self, target: Target) -> Iterator[_Table]:
        if target.kind != "sql" or not target.table:
            raise TargetError(f"not a SQL target: {target.describe()}")
        with sql_engine(target.location) as engine, engine.begin() as conn:
            yield _Table(conn, target.table, target.where)

    # ------------------------------------------------------------------ contract
    def exists(self, target: Target) -> bool:
        with self._table(target) as t:
            return t.exists()

    def checksum(self, target: Target) -> dict[str, Any]:
        with self._table(target) as t:
            if not t.exists():
                return {}
            result = t.conn.execute(t.select_all())
            return row_checksum(list(result.keys()), result.fetchall())

    def backup(self, target: Target, backup_id: str) -> dict[str, Any]:
        bak = backup_table_name(backup_id)
        with self._table(target) as t:
            if not t.exists(bak):  # CREATE TABLE AS is atomic: an existing copy is complete
                if not t.exists():
                    raise TargetError(f"{target.describe()}: table does not exist")
                t.conn.execute(t.select_all().into(bak, schema=t.schema))
            columns = t.columns(bak)
        return {
            "kind": "sql",
            "url": target.location,
            "table": target.table,
            "backup_table": bak,
            "stash_table": stash_table_name(backup_id),
            "where": target.where,
            "columns": columns,
        }

    def restore(self, target: Target, ref: dict[str, Any]) -> None:
        with self._table(target) as t:
            bak, stash = check_identifier(ref["backup_table"]), check_identifier(ref["stash_table"])
            if not t.exists(bak):
                raise RestoreError(f"backup table {bak} for {target.describe()} is missing")
            if t.exists(stash):
                if t.exists():
                    t.drop(t.name)
                t.rename(stash, t.name)
            t.delete_where()
            t.copy_from(bak, ref["columns"])

    def discard(self, ref: dict[str, Any]) -> None:
        target = Target(kind="sql", location=ref["url"], table=ref["table"])
        with self._table(target) as t:
            t.drop(check_identifier(ref["backup_table"]))

    def discard_partial(self, target: Target, backup_id: str) -> None:
        """Drop a backup table left by a crash before the backup was recorded."""
        with self._table(target) as t:
            t.drop(backup_table_name(backup_id))

    # ------------------------------------------------------------------ mutations used by faults
    def count(self, target: Target) -> int:
        """Rows in the target (``0`` if the table is missing)."""
        import sqlalchemy as sa

        with self._table(target) as t:
            if not t.exists():
                return 0
            return int(
                t.conn.execute(
                    sa.select(sa.func.count()).select_from(t.select_all().subquery())
                ).scalar_one()
            )

    def stash(self, target: Target, backup_id: str) -> str:
        """Rename the table away (``missing``); restore renames it back. Idempotent."""
        stash = stash_table_name(backup_id)
        with self._table(target) as t:
            if not t.exists(stash):
                t.rename(t.name, stash)
        return stash

    def delete_rows(self, target: Target) -> int:
        """Delete the target's rows (the partition if ``where`` is set); return how many."""
        with self._table(target) as t:
            return t.delete_where()

    def keep_first(self, target: Target, backup_id: str, keep: int) -> None:
        """Leave only the first ``keep`` rows of the backup copy in the target (one transaction)."""
        with self._table(target) as t:
            bak = backup_table_name(backup_id)
            if not t.exists(bak):
                raise TargetError(f"{target.describe()}: no backup table {bak} to truncate from")
            t.delete_where()
            t.copy_from(bak, t.columns(bak), limit=keep)

    def read_rows(self, target: Target) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of the target."""
        with self._table(target) as t:
            if not t.exists():
                raise TargetError(f"{target.describe()}: table does not exist")
            result = t.conn.execute(t.select_all())
            return list(result.keys()), [tuple(r) for r in result.fetchall()]

    def reshape(
        self,
        target: Target,
        backup_id: str,
        columns: Sequence[tuple[str, str, str]],
        *,
        flip: Callable[[Any], dict[str, dict[int, Any]]] | None = None,
    ) -> dict[str, Any]:
        """Really change the table's schema (schema faults), in one transaction.

        ``columns`` lists the new table's columns in order as ``(name, source column, how)``:
        ``how`` is ``"keep"`` (the source's declared type) or ``"text"`` (PostgreSQL: ``TEXT``,
        values cast by the server; SQLite: untyped, so values keep their storage class). The table
        is renamed to its stash (restore renames it back) and the new table, filled server-side
        from the stash, takes its name. ``flip`` (SQLite only) gets the ``"text"`` columns as an
        object DataFrame indexed by rowid and returns ``{column: {rowid: new value}}`` to write.
        Returns rows, rows changed, and the schema before and after.
        """
        stash = stash_table_name(backup_id)
        with self._table(target) as t:
            if t.where:
                raise TargetError(
                    f"{target.describe()}: a schema change acts on the whole table, not one "
                    "partition: target the table without where"
                )
            if not t.exists():
                raise TargetError(f"{target.describe()}: table does not exist")
            if t.exists(stash):
                raise TargetError(f"{target.describe()}: already reshaped ({stash} exists)")
            dialect = t.conn.dialect.name
            if dialect not in ("sqlite", "postgresql"):
                raise TargetError(
                    f"{target.describe()}: schema faults support SQLite and PostgreSQL"
                )
            before = t.declared()
            declared = {name: (kind, notnull) for name, kind, notnull in before}
            if not columns:
                raise TargetError(f"{target.describe()}: the change would leave no column")
            for new, source, how in columns:
                check_identifier(new, "column")
                if source not in declared:
                    raise TargetError(f"{target.describe()}: no column {source!r}")
                if how not in ("keep", "text"):
                    raise TargetError(f"unknown column change {how!r}")
            if len({new for new, _, _ in columns}) != len(columns):
                raise TargetError(f"{target.describe()}: the change would duplicate a column name")
            q = t._quote
            defs, exprs = [], []
            for new, source, how in columns:
                kind, notnull = declared[source]
                if how == "text":
                    kind = "TEXT" if dialect == "postgresql" else ""
                    exprs.append(f"CAST({q(source)} AS TEXT)" if kind else q(source))
                else:
                    exprs.append(q(source))
                null = " NOT NULL" if notnull and how == "keep" else ""
                defs.append(f"{q(new)} {kind}".rstrip() + null)
            t.rename(t.name, stash)
            t.conn.exec_driver_sql(f"CREATE TABLE {t.qualified()} ({', '.join(defs)})")
            names = ", ".join(q(new) for new, _, _ in columns)
            t.conn.exec_driver_sql(
                f"INSERT INTO {t.qualified()} ({names}) SELECT {', '.join(exprs)} "
                f"FROM {t.qualified(stash)}"
            )
            rows = int(t.conn.exec_driver_sql(f"SELECT count(*) FROM {t.qualified()}").scalar_one())
            texts = [new for new, _, how in columns if how == "text"]
            changed = rows if not texts else 0
            if texts and flip is not None and dialect == "sqlite":
                changed = _flip_cells(t, texts, flip)
            elif texts:
                present = " OR ".join(f"{q(c)} IS NOT NULL" for c in texts)
                changed = int(
                    t.conn.exec_driver_sql(
                        f"SELECT count(*) FROM {t.qualified()} WHERE {present}"
                    ).scalar_one()
                )
            after = t.declared()
        return {
            "rows": rows,
            "rows_changed": changed,
            "before": [f"{name} {kind}".rstrip() for name, kind, _ in before],
            "after": [f"{name} {kind}".rstrip() for name, kind, _ in after],
            "stashed_as": stash,
            "dialect": dialect,
        }

    def replace_rows(self, target: Target, records: list[dict[str, Any]]) -> None:
        """Replace the target's rows (its partition) by ``records``, in one transaction."""
        import sqlalchemy as sa

        with self._table(target) as t:
            t.delete_where()
            if records:
                t.conn.execute(sa.insert(t.ref(columns=list(records[0]))), records)


def _flip_cells(
    t: _Table, columns: list[str], flip: Callable[[Any], dict[str, dict[int, Any]]]
) -> int:
    """Read ``columns`` with their rowids, let ``flip`` pick new values, write them (SQLite)."""
    import pandas as pd
    import sqlalchemy as sa

    q = t._quote
    result = t.conn.exec_driver_sql(
        f"SELECT rowid, {', '.join(q(c) for c in columns)} FROM {t.qualified()} ORDER BY rowid"
    )
    rows = result.fetchall()
    frame = pd.DataFrame(
        [tuple(r[1:]) for r in rows],
        columns=columns,
        index=pd.Index([r[0] for r in rows], dtype="int64"),
        dtype=object,
    )
    updates = flip(frame)
    touched: set[int] = set()
    for column, cells in updates.items():
        if column not in columns or not cells:
            continue
        tbl = sa.table(t.name, sa.column("rowid"), sa.column(column), schema=t.schema)
        stmt = (
            sa.update(tbl)
            .where(tbl.c.rowid == sa.bindparam("mlchaos_rid"))
            .values({column: sa.bindparam("mlchaos_value")})
        )
        t.conn.execute(
            stmt, [{"mlchaos_rid": int(k), "mlchaos_value": v} for k, v in cells.items()]
        )
        touched.update(int(k) for k in cells)
    return len(touched)
