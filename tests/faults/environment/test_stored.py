"""Data faults on stored data (StoredDataFault) through the session: SQL schema faults change the
schema for real on SQLite and PostgreSQL and are restored exactly (schema and rows, fingerprinted
independently of the store); every stored data fault reports rows_changed (0 when it changed
nothing) and the changed columns, for local files, S3 objects and SQL tables."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec
from mlchaos_orchestration.core.session import apply_fault, restore_lease
from mlchaos_orchestration.errors import MlchaosError, SpecError, TargetError
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.catalog import get_fault_class
from mlchaos_orchestration.faults.environment.stored import StoredDataFault
from mlchaos_orchestration.settings import get_settings

N = 40
SQLITE_DDL = [
    "CREATE TABLE features (id INTEGER PRIMARY KEY, amount REAL NOT NULL, price NUMERIC(10,2), "
    "city VARCHAR(20), seen DATE, n INTEGER, blob BLOB)",
    "CREATE INDEX features_city ON features (city)",
]
PG_DDL = [
    "CREATE TABLE features (id integer PRIMARY KEY, amount double precision NOT NULL, "
    "price numeric(10,2), city varchar(20), seen date, n integer, blob bytea)",
    "CREATE INDEX features_city ON features (city)",
]


def _rows() -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "amount": i * 2.5 - 7,
            "price": f"{i * 1.25:.2f}",
            "city": "abcde"[i % 5] if i % 7 else None,
            "seen": f"2024-01-{1 + i % 28:02d}",
            "n": i if i % 4 else None,
            "blob": bytes([i, 255 - i]),
        }
        for i in range(N)
    ]


def _exec(url: str, *statements: str, params: Any = None) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            out: list[tuple[Any, ...]] = []
            for statement in statements:
                result = conn.execute(sa.text(statement), params or {})
                out = [tuple(r) for r in result] if result.returns_rows else []
            return out
    finally:
        engine.dispose()


def _make_table(url: str) -> None:
    ddl = PG_DDL if url.startswith("postgresql") else SQLITE_DDL
    _exec(url, *ddl)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            cols = ", ".join(_rows()[0])
            marks = ", ".join(f":{c}" for c in _rows()[0])
            conn.execute(sa.text(f"INSERT INTO features ({cols}) VALUES ({marks})"), _rows())
    finally:
        engine.dispose()


def schema_and_rows(url: str, table: str = "features") -> dict[str, Any]:
    """Fingerprint of a table independent of the stores: the catalog's view of every column
    (name, declared type, NOT NULL, default, position), its indexes and constraints, and every
    row with each value's stored type (SQLite ``quote()``, PostgreSQL ``row::text``)."""
    if url.startswith("postgresql"):
        columns = _exec(
            url,
            "SELECT ordinal_position, column_name, data_type, character_maximum_length, "
            "numeric_precision, numeric_scale, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_name = :t ORDER BY ordinal_position",
            params={"t": table},
        )
        indexes = _exec(
            url,
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t ORDER BY indexname",
            params={"t": table},
        )
        constraints = _exec(
            url,
            "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class r ON r.oid = c.conrelid WHERE r.relname = :t ORDER BY conname",
            params={"t": table},
        )
        rows = _exec(url, f"SELECT r::text FROM {table} r ORDER BY 1")
    else:
        columns = _exec(url, f"PRAGMA table_info({table})")
        indexes = _exec(url, f"PRAGMA index_list({table})")
        constraints = _exec(url, f"PRAGMA foreign_key_list({table})")
        names = [c[1] for c in columns]
        quoted = " || '|' || ".join(f"quote({n})" for n in names)
        rows = _exec(url, f"SELECT {quoted} FROM {table} ORDER BY 1")
    digest = hashlib.sha256(json.dumps([list(r) for r in rows]).encode()).hexdigest()
    return {
        "columns": [list(c) for c in columns],
        "indexes": [list(i) for i in indexes],
        "constraints": [list(c) for c in constraints],
        "rows": digest,
        "count": len(rows),
    }


def leftover_tables(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        names = sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    return sorted(n for n in names if n.startswith(("mlchaos_bak_", "mlchaos_stash_")))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'features.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    _make_table(url)
    return url


@pytest.fixture
def session(mlchaos_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A ledger and settings whose allowlist holds every target of these tests."""

    def make(*allowed: str) -> tuple[Ledger, Any]:
        monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", ",".join(allowed))
        settings = get_settings()
        return Ledger(settings.ledger_url), settings

    return make


def stored(spec: dict[str, Any], target: Any) -> StoredDataFault:
    spec = dict(spec)
    inner = get_fault_class(spec.pop("fault")).model_validate(spec)
    return StoredDataFault(inner=inner, target=target)


def read(url: str) -> pd.DataFrame:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return pd.read_sql(sa.text("SELECT * FROM features ORDER BY id"), conn)
    finally:
        engine.dispose()


def apply(ledger: Ledger, settings: Any, fault: Any, seed: int = 5) -> Any:
    return apply_fault(
        ledger,
        fault,
        ApplyContext(seed=seed),
        run_id="stored",
        safety=SafetySpec(),
        settings=settings,
    )


# ------------------------------------------------------------------------ SQL schema faults
def test_sql_drop_column_drops_it_and_restore_is_exact(db_url: str, session: Any) -> None:
    ledger, settings = session(f"{db_url}#features")
    before = schema_and_rows(db_url)
    fault = stored(
        {"fault": "drop_column", "columns": ["city", "price"]}, {"url": db_url, "table": "features"}
    )
    applied = apply(ledger, settings, fault)
    seen = read(db_url)
    assert list(seen.columns) == ["id", "amount", "seen", "n", "blob"]  # order kept, two gone
    assert len(seen) == N and seen["amount"].tolist() == [r["amount"] for r in _rows()]
    details = applied.details
    assert details["rows_changed"] == N and details["rows_read"] == N
    assert details["columns"] == ["city", "price"]
    assert len(details["schema_change"]["after"]) == len(details["schema_change"]["before"]) - 2
    assert schema_and_rows(db_url) != before
    outcome = restore_lease(ledger, applied.lease.id, settings=settings)
    assert outcome.restored, outcome.error
    assert schema_and_rows(db_url) == before
    assert leftover_tables(db_url) == []


def test_sql_rename_column_renames_it_and_restore_is_exact(db_url: str, session: Any) -> None:
    ledger, settings = session(f"{db_url}#features")
    before = schema_and_rows(db_url)
    fault = stored(
        {"fault": "rename_column", "mapping": {"amount": "amount_usd"}},
        {"url": db_url, "table": "features"},
    )
    applied = apply(ledger, settings, fault)
    seen = read(db_url)
    assert list(seen.columns) == ["id", "amount_usd", "price", "city", "seen", "n", "blob"]
    assert seen["amount_usd"].tolist() == [r["amount"] for r in _rows()]
    assert applied.details["rows_changed"] == N and applied.details["columns"] == ["amount"]
    after = applied.details["schema_change"]["after"]
    assert any(a.startswith("amount_usd ") for a in after)
    with pytest.raises(sa.exc.DBAPIError):  # a reader's query by the old name fails for real
        _exec(db_url, "SELECT amount FROM features")
    assert restore_lease(ledger, applied.lease.id, settings=settings).restored
    assert schema_and_rows(db_url) == before
    assert _exec(db_url, "SELECT sum(amount) FROM features")[0][0] == sum(
        r["amount"] for r in _rows()
    )
    assert leftover_tables(db_url) == []


def test_sql_type_flip_changes_the_column_type(db_url: str, session: Any) -> None:
    ledger, settings = session(f"{db_url}#features")
    before = schema_and_rows(db_url)
    fault = stored(
        {"fault": "type_flip", "columns": ["n"], "fraction": 0.5},
        {"url": db_url, "table": "features"},
    )
    applied = apply(ledger, settings, fault)
    values = dict(_exec(db_url, "SELECT id, n FROM features"))
    present = sum(1 for r in _rows() if r["n"] is not None)
    details = applied.details
    if db_url.startswith("postgresql"):
        # strict typing: the whole column is text now, every present value arrives as a string
        kind = _exec(
            db_url,
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'features' AND column_name = 'n'",
        )[0][0]
        assert kind == "text"
        assert all(isinstance(v, str) for v in values.values() if v is not None)
        assert details["rows_changed"] == present
        assert details["schema_change"]["whole_column"] is True
    else:
        # SQLite: the column is untyped now and only the sampled cells hold text
        kinds = dict(_exec(db_url, "SELECT id, typeof(n) FROM features"))
        flipped = [i for i, k in kinds.items() if k == "text"]
        assert len(flipped) == details["rows_changed"] > 0
        assert 0 < len(flipped) < present
        assert all(values[i] == str(_rows()[i]["n"]) for i in flipped)
        assert {kinds[i] for i in kinds if i not in flipped} <= {"integer", "null"}
        assert "whole_column" not in details["schema_change"]
    assert details["columns"] == ["n"]
    assert restore_lease(ledger, applied.lease.id, settings=settings).restored
    assert schema_and_rows(db_url) == before
    assert leftover_tables(db_url) == []


def test_sql_type_flip_on_a_text_column_changes_nothing_and_says_so(
    tmp_path: Path, session: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    _make_table(url)
    ledger, settings = session(f"{url}#features")
    applied = apply(
        ledger,
        settings,
        stored({"fault": "type_flip", "columns": ["city"]}, {"url": url, "table": "features"}),
    )
    assert applied.details["rows_changed"] == 0
    assert restore_lease(ledger, applied.lease.id, settings=settings).restored


@pytest.mark.parametrize(
    "spec",
    [
        {"fault": "drop_column", "columns": ["city"]},
        {"fault": "rename_column", "columns": ["city"]},
        {"fault": "type_flip", "columns": ["n"]},
    ],
)
def test_sql_schema_fault_on_a_partition_is_refused_and_touches_nothing(
    db_url: str, session: Any, spec: dict[str, Any]
) -> None:
    ledger, settings = session(f"{db_url}#features")
    before = schema_and_rows(db_url)
    fault = stored(spec, {"url": db_url, "table": "features", "where": {"city": "a"}})
    with pytest.raises(TargetError, match="whole table, not one partition") as info:
        apply(ledger, settings, fault)
    assert "\n" not in str(info.value)
    assert schema_and_rows(db_url) == before
    assert leftover_tables(db_url) == []
    assert [lease.state for lease in ledger.leases()] == ["restored"]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"fault": "drop_column", "columns": ["nope"]}, SpecError),
        ({"fault": "rename_column", "mapping": {"city": "amount"}}, SpecError),
        (
            {
                "fault": "drop_column",
                "columns": ["id", "amount", "price", "city", "seen", "n", "blob"],
            },
            TargetError,
        ),
    ],
)
def test_sql_bad_schema_changes_are_refused_cleanly(
    tmp_path: Path, session: Any, spec: dict[str, Any], error: type[MlchaosError]
) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    _make_table(url)
    ledger, settings = session(f"{url}#features")
    before = schema_and_rows(url)
    with pytest.raises(error):
        apply(ledger, settings, stored(spec, {"url": url, "table": "features"}))
    assert schema_and_rows(url) == before
    assert leftover_tables(url) == []


# ------------------------------------------------------------------------ rows_changed evidence
CSV = "id,amount,city\n" + "".join(f"{i},{i * 1.5},{'xyz'[i % 3]}\n" for i in range(20))


@pytest.mark.parametrize(
    ("spec", "rows", "columns"),
    [
        ({"fault": "nulls", "columns": ["amount"], "fraction": 0.25}, 5, ["amount"]),
        ({"fault": "nulls", "columns": ["amount"], "fraction": 0.0}, 0, ["amount"]),
        ({"fault": "drop_column", "columns": ["city"]}, 20, ["city"]),
    ],
)
def test_rows_changed_for_local_s3_and_sql(
    tmp_path: Path,
    session: Any,
    s3_client: Any,
    s3_bucket: str,
    spec: dict[str, Any],
    rows: int,
    columns: list[str],
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text(CSV)
    (folder / "b.csv").write_text(CSV)
    s3_client.put_object(Bucket=s3_bucket, Key="in/a.csv", Body=CSV.encode())
    url = f"sqlite:///{tmp_path / 'f.db'}"
    pd.read_csv(io.StringIO(CSV)).to_sql("features", sa.create_engine(url), index=False)
    ledger, settings = session(str(folder), f"s3://{s3_bucket}/in/", f"{url}#features")
    targets = [
        (str(folder), 2 * rows),  # two files, each faulted
        (f"s3://{s3_bucket}/in/a.csv", rows),
        ({"url": url, "table": "features"}, rows),
    ]
    for target, expected in targets:
        applied = apply(ledger, settings, stored(spec, target))
        details = applied.details
        assert isinstance(details["rows_changed"], int)
        assert details["rows_changed"] == expected, (target, details)
        assert details["columns"] == columns
        event = next(
            e for e in ledger.events("stored") if e.data.get("lease_id") == applied.lease.id
        )
        assert event.data["details"]["rows_changed"] == expected
        assert restore_lease(ledger, applied.lease.id, settings=settings).restored


# ------------------------------------------------------------------------ type_flip on files
def test_type_flip_on_files_is_stored_for_real_or_refused(tmp_path: Path, session: Any) -> None:
    frame = pd.DataFrame({"id": range(20), "n": [float(i) if i % 5 else None for i in range(20)]})
    folder = tmp_path / "files"
    folder.mkdir()
    frame.to_parquet(folder / "a.parquet", index=False)
    frame.to_json(folder / "b.jsonl", orient="records", lines=True)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    frame.to_csv(csv_dir / "c.csv", index=False)
    ledger, settings = session(str(folder), str(csv_dir))
    spec = {"fault": "type_flip", "columns": ["n"], "fraction": 0.5}

    # CSV stores no types: "3.0" reads back as 3.0, the fault would do nothing -> refused
    csv_before = (csv_dir / "c.csv").read_bytes()
    with pytest.raises(TargetError, match="CSV stores no types") as info:
        apply(ledger, settings, stored(spec, str(csv_dir)))
    assert "\n" not in str(info.value)
    assert (csv_dir / "c.csv").read_bytes() == csv_before

    applied = apply(ledger, settings, stored(spec, str(folder)))
    parquet = pd.read_parquet(folder / "a.parquet")
    present = int(frame["n"].notna().sum())
    # Arrow holds no mixed column: the whole column is text now, missing values stay missing
    assert parquet["n"].isna().sum() == frame["n"].isna().sum()
    assert all(isinstance(v, str) for v in parquet["n"].dropna())
    jsonl = [json.loads(line) for line in (folder / "b.jsonl").read_text().splitlines()]
    as_text = [row["n"] for row in jsonl if isinstance(row["n"], str)]
    assert 0 < len(as_text) < present  # JSON keeps numbers and strings apart: a real mix
    assert applied.details["rows_changed"] == present + len(as_text)
    assert restore_lease(ledger, applied.lease.id, settings=settings).restored
    assert pd.read_parquet(folder / "a.parquet").equals(frame)
