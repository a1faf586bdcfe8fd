"""SQLAlchemy backend: seeded failures and latency for every engine that points at one database.

Mechanism (public event API, verified on SQLAlchemy 2.1): listeners are registered on the
:class:`~sqlalchemy.engine.Engine` *class*, so engines created before or after install are covered.

* ``before_cursor_execute`` (``retval=True``) - runs for every cursor execution (single,
  executemany, no-params, insertmanyvalues) inside the block SQLAlchemy guards with its DBAPI
  error handling. Raising the dialect's own ``loaded_dbapi.OperationalError`` there reaches the
  caller as :class:`sqlalchemy.exc.OperationalError` whose ``.orig`` is the driver's exception
  (e.g. ``psycopg2.OperationalError``); the connection stays usable, as after a server-side error.
* ``do_connect`` (dialect event) - runs before each new DBAPI connection; raising there makes
  ``engine.connect()`` fail with :class:`sqlalchemy.exc.OperationalError`. Connections already
  in a pool are not re-made, so pooled engines see connect failures only when they reconnect.

Statements run with the ``mlchaos_internal`` execution option (the ledger's engine) are exempt.
Engines are matched on what identifies the database, never on credentials: backend name plus
the connect arguments that host, port and database produce for the engine's own dialect.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, Engine, make_url

from mlchaos_orchestration.interceptors.registry import Injector

DBAPI_ERRORS = (
    "OperationalError",
    "InterfaceError",
    "DatabaseError",
    "InternalError",
    "ProgrammingError",
)
POINTS = ("connect", "execute")
#: execution option marking mlchaos's own engines (the ledger): their statements never fail
INTERNAL_OPTION = "mlchaos_internal"
_NO = object()


def problems(spec: dict[str, Any]) -> list[str]:
    """Problems with a ``sql_failure`` / ``sql_error`` spec (empty if valid)."""
    kind = spec["kind"]
    allowed = {"kind", "url", "rate", "latency_ms", "jitter_ms", "seed", "error"}
    allowed |= {"on"} if kind == "sql_failure" else {"table"}
    out = [f"{kind}: unknown field {name!r}" for name in sorted(set(spec) - allowed)]
    try:
        make_url(str(spec.get("url") or ""))
    except Exception:  # noqa: BLE001 - any parse failure is a spec problem
        out.append(f"{kind}.url: not a SQLAlchemy URL: {spec.get('url')!r}")
    if spec.get("error", "OperationalError") not in DBAPI_ERRORS:
        out.append(f"{kind}.error: must be one of {', '.join(DBAPI_ERRORS)}")
    if kind == "sql_failure":
        on = spec.get("on", list(POINTS))
        if not isinstance(on, list) or not on or not all(p in POINTS for p in on):
            out.append(f"sql_failure.on: must be a non-empty list of {POINTS}, got {on!r}")
    elif not isinstance(spec.get("table"), str) or not spec["table"]:
        out.append("sql_error.table: required (the table whose statements fail)")
    return out


class DatabaseMatcher:
    """Decides whether an engine / a new connection points at the target database."""

    def __init__(self, url: str):
        target = make_url(url)
        self.backend = target.get_backend_name()
        self._target = target
        self._identity: dict[tuple[str, str], tuple[list[Any] | None, dict[str, Any]]] = {}
        self._engines: dict[tuple[URL, str, str], bool] = {}
        self._by_engine: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _identity_for(self, dialect: Dialect) -> tuple[list[Any] | None, dict[str, Any]]:
        """Connect args that host/port/database yield for ``dialect`` (cargs None = any)."""
        key = (dialect.name, dialect.driver)
        with self._lock:
            if key not in self._identity:
                drivername = f"{dialect.name}+{dialect.driver}"
                t = self._target
                cargs, cparams = dialect.create_connect_args(
                    URL.create(drivername, host=t.host, port=t.port, database=t.database)
                )
                try:
                    blank_args, blank_params = dialect.create_connect_args(URL.create(drivername))
                except Exception:  # noqa: BLE001 - a dialect may insist on a host
                    blank_args, blank_params = None, {}
                params = {k: v for k, v in cparams.items() if blank_params.get(k, _NO) != v}
                self._identity[key] = (list(cargs) if cargs != blank_args else None, params)
            return self._identity[key]

    def matches_connect(self, dialect: Dialect, cargs: Any, cparams: Mapping[str, Any]) -> bool:
        """True if a connection about to be made with these arguments reaches the target."""
        if dialect.name != self.backend:
            return False
        want_args, want_params = self._identity_for(dialect)
        if want_args is not None and list(cargs) != want_args:
            return False
        return all(cparams.get(k, _NO) == v for k, v in want_params.items())

    def matches(self, engine: Engine) -> bool:
        """:meth:`matches_engine` for an engine object, cached per engine: the per-statement
        path costs one weak-dict look-up (hashing the URL every time cost 0.8 us)."""
        cached = self._by_engine.get(engine)
        if cached is None:
            cached = self.matches_engine(engine.dialect, engine.url)
            self._by_engine[engine] = cached
        return cached

    def matches_engine(self, dialect: Dialect, url: URL) -> bool:
        """True if an engine with this dialect and URL reaches the target (cached)."""
        key = (url, dialect.name, dialect.driver)
        cached = self._engines.get(key)
        if cached is None:
            cargs, cparams = dialect.create_connect_args(url)
            cached = self.matches_connect(dialect, cargs, cparams)
            with self._lock:
                if len(self._engines) > 256:
                    self._engines.clear()
                self._engines[key] = cached
        return cached


def _table_pattern(table: str) -> re.Pattern[str]:
    """Matches ``table`` as a whole identifier, bare, quoted or schema-qualified."""
    return re.compile(r'(?<![\w$])["`\[]?' + re.escape(table) + r'["`\]]?(?![\w$])', re.I)


def _error(dialect: Dialect, name: str, message: str) -> Exception:
    dbapi = dialect.loaded_dbapi
    return getattr(dbapi, name, dbapi.OperationalError)(message)


def install(spec: dict[str, Any], injector: Injector) -> Callable[[], None]:
    """Register the listeners for ``spec``; returns the function that removes them."""
    matcher = DatabaseMatcher(spec["url"])
    error = spec.get("error", "OperationalError")
    where = make_url(spec["url"]).render_as_string(hide_password=True)
    pattern = _table_pattern(spec["table"]) if spec["kind"] == "sql_error" else None
    points = spec.get("on", list(POINTS)) if pattern is None else ["execute"]
    message = f"mlchaos: injected connector failure ({spec['kind']} on {where})"

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> tuple[str, Any]:
        if (
            matcher.matches(conn.engine)
            and (pattern is None or pattern.search(statement))
            and not context.execution_options.get(INTERNAL_OPTION)
            and injector.roll("execute")
        ):
            raise _error(conn.dialect, error, message)
        return statement, parameters

    def do_connect(dialect: Dialect, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        if matcher.matches_connect(dialect, cargs, cparams) and injector.roll("connect"):
            raise _error(dialect, error, message)

    listeners: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []
    if "execute" in points:
        listeners.append(("before_cursor_execute", before_cursor_execute, {"retval": True}))
    if "connect" in points:
        listeners.append(("do_connect", do_connect, {}))
    for name, fn, kw in listeners:
        event.listen(Engine, name, fn, **kw)

    def uninstall() -> None:
        for name, fn, _ in listeners:
            if event.contains(Engine, name, fn):
                event.remove(Engine, name, fn)

    return uninstall
