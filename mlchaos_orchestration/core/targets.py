"""Targets: where a fault acts: a local path, an ``s3://`` URI, or a SQL table (or partition).

In YAML a target is a string (``s3://bucket/prefix/``, ``/data/events/part.parquet``) or a mapping
``{url: <SQLAlchemy URL>, table: <name>}`` (plus ``where: {column: value}`` for one partition).
An MLflow registered model is ``kind="mlflow"``: ``location`` its tracking store URI (a
SQLAlchemy URL), ``table`` the model's name (see ``stores/mlflow_registry.py``).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from mlchaos_orchestration.errors import TargetError

TargetKind = Literal["local", "s3", "sql", "mlflow"]


class Target(BaseModel):
    """One place a fault may act on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TargetKind
    location: str
    table: str | None = None
    where: dict[str, Any] | None = None
    #: what the target resolved to where its lease was taken (:meth:`resolved`); None: resolve
    #: in this process's environment
    identity: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> Target:
        if not self.location:
            raise ValueError("target location is empty")
        if self.kind in ("sql", "mlflow") and not self.table:
            raise ValueError(f"a {self.kind} target needs a table / registered model name")
        if self.kind == "s3":
            if not self.location.startswith("s3://") or len(self.location) <= 5:
                raise ValueError("an S3 target must look like s3://bucket/key")
        if "\x00" in self.location:
            raise ValueError("target contains a NUL byte")
        if self.kind in ("sql", "mlflow") and _literal_password(self.location):
            raise ValueError(
                "a SQL target must not contain a literal password (it would be stored in the "
                "ledger): reference an environment variable instead, e.g. url: ${FEATURES_DB_URL}"
            )
        return self

    def connect_url(self) -> str:
        """The URL to connect with: ``${VAR}`` references expanded from the environment.

        Only the reference is ever stored (ledger, events); secrets stay in the environment.
        """
        return os.path.expandvars(self.location)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, value: Any) -> Target:
        """Build a target from a YAML value (string or mapping) or return it unchanged."""
        if isinstance(value, Target):
            return value
        if isinstance(value, str):
            text = value.strip()
            if not text:
                raise TargetError("target is empty")
            if text.startswith("s3://"):
                return cls(kind="s3", location=text)
            if "://" in text:
                raise TargetError(
                    f"target {text!r}: a SQL target is a mapping {{url: ..., table: ...}}"
                )
            return cls(kind="local", location=os.path.abspath(os.path.expanduser(text)))
        if isinstance(value, dict):
            if "url" in value:
                extra = set(value) - {"url", "table", "where"}
                if extra:
                    raise TargetError(f"unknown target field(s): {', '.join(sorted(extra))}")
                return cls(
                    kind="sql",
                    location=str(value["url"]),
                    table=value.get("table"),
                    where=value.get("where"),
                )
            if "path" in value:
                return cls.parse(str(value["path"]))
            if "uri" in value:
                return cls.parse(str(value["uri"]))
        raise TargetError(f"target must be a path, an s3:// URI or {{url, table}}, got {value!r}")

    # ------------------------------------------------------------------ identity
    @property
    def bucket(self) -> str:
        return self.location[5:].split("/", 1)[0]

    @property
    def key(self) -> str:
        """The S3 key / prefix (after the bucket)."""
        parts = self.location[5:].split("/", 1)
        return parts[1] if len(parts) > 1 else ""

    def redacted_location(self) -> str:
        """Location safe to log: passwords in SQL URLs are masked."""
        if self.kind not in ("sql", "mlflow"):
            return self.location
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.connect_url()).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - a bad URL must still be printable
            return "<unparseable sql url>"

    def database_identity(self) -> tuple[str, ...]:
        """(backend, host, port, database) of a SQL target: what makes two URLs one database
        whatever the driver or credentials."""
        return database_identity(self.connect_url())

    def resolved(self) -> Target:
        """This target with its :attr:`identity` fixed in this process's environment: stored with
        a lease, so a deployment whose ``${VAR}``s say otherwise compares what was really held."""
        if self.identity is not None:
            return self
        return self.model_copy(update={"identity": self.resolve_identity()})

    def resolve_identity(self) -> tuple[str, ...]:
        """What the target is, whatever its spelling: ``${VAR}``s expanded; for SQL / MLflow
        (backend, host, port, database, table) without driver or credentials (default port filled
        in, loopback names unified, the default schema and identifier case folded)."""
        if self.identity is not None:
            return self.identity
        if self.kind in ("sql", "mlflow"):
            db = database_identity(self.location)
            return (*db, _table_identity(db[0], self.table or ""))
        location = os.path.expandvars(self.location)
        if self.kind == "local":
            return (os.path.normpath(location),)
        return (location.rstrip("/"),)

    def lock_key(self) -> str:
        """Canonical key used for leases and overlap checks (no secrets)."""
        if self.kind == "sql":
            where = ""
            if self.where:
                where = "?" + "&".join(f"{k}={self.where[k]}" for k in sorted(self.where))
            return f"sql:{self.redacted_location()}#{self.table}{where}"
        if self.kind == "local":
            return "local:" + os.path.normpath(self.location)
        if self.kind == "mlflow":
            return f"mlflow:{self.redacted_location()}#{self.table}"
        return self.location

    def overlaps(self, other: Target) -> bool:
        """True if the two targets may touch the same data."""
        if self.kind != other.kind:
            return False
        mine, theirs = self.resolve_identity(), other.resolve_identity()
        if self.kind == "mlflow":
            return mine == theirs
        if self.kind == "sql":
            if mine[:-1] != theirs[:-1]:
                return False
            if "*" not in (mine[-1], theirs[-1]) and mine[-1] != theirs[-1]:
                return False
            if self.where and other.where and set(self.where) == set(other.where):
                return self.where == other.where
            return True
        a, b = mine[0], theirs[0]
        return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")

    def describe(self) -> str:
        if self.kind == "sql":
            where = f" where {self.where}" if self.where else ""
            return f"table {self.table} at {self.redacted_location()}{where}"
        if self.kind == "mlflow":
            return f"registered model {self.table} at {self.redacted_location()}"
        return self.location


def _literal_password(location: str) -> bool:
    """True if a SQL URL carries a password written out (not an ``${VAR}`` reference)."""
    if "${" in location or location.startswith("$"):
        return False
    from sqlalchemy.engine import make_url

    try:
        return make_url(location).password not in (None, "", "***")
    except Exception:  # noqa: BLE001 - an unparseable URL fails later, with its own message
        return False


#: port a server backend listens on when a URL names none
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
#: schema a bare table name lives in, per backend
DEFAULT_SCHEMA = {"postgresql": "public", "sqlite": "main", "mssql": "dbo"}


def _table_identity(backend: str, table: str) -> str:
    """A table name as the database sees it: default schema dropped, unquoted case folded."""
    name = table.strip()
    schema = DEFAULT_SCHEMA.get(backend)
    if schema and name.lower().startswith(schema + "."):
        name = name[len(schema) + 1 :]
    if '"' in name or "`" in name:
        return name.replace('"', "").replace("`", "")  # quoted: case kept
    return name.lower() if backend in ("postgresql", "sqlite", "mysql", "mariadb") else name


def database_identity(url: str) -> tuple[str, ...]:
    """(backend, host, port, database) of a SQLAlchemy URL (``${VAR}`` expanded; driver and
    credentials dropped, a server's default port filled in, loopback host names unified)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(os.path.expandvars(url))
    except Exception:  # noqa: BLE001
        return ("?", url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
        database = os.path.abspath(database)
    backend = parsed.get_backend_name()
    host = (parsed.host or "").lower()
    if host in LOOPBACK:
        host = "localhost"
    port = parsed.port or (DEFAULT_PORTS.get(backend) if host else None)
    return (backend, host, str(port or ""), database)
