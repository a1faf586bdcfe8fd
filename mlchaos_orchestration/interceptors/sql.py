"""SQLAlchemy backend: seeded failures and latency for every engine that points at one database.

Mechanism (public event API, verified on SQLAlchemy 2.1): listeners are registered on each
*engine* that points at the target database - engines alive at install (found by one walk of the
heap) and engines created while the hook is installed (``Engine.__init__`` is wrapped until the
last SQL hook is removed). Engines of other databases get no listener at all, and removing the
hook gives an engine back SQLAlchemy's event-free fast path: a dormant process pays nothing per
statement.

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

import functools
import gc
import logging
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.engine.base import OptionEngineMixin

from mlchaos_orchestration.interceptors.registry import Injector

DBAPI_ERRORS = (
    "OperationalError",
    "InterfaceError",
    "DatabaseError",
    "InternalError",
    "ProgrammingError",
)
POINTS = ("connect", "execute")
log = logging.getLogger(__name__)
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


class _Rule:
    """One installed spec: its listeners and the engines they are armed on."""

    def __init__(self, spec: dict[str, Any], injector: Injector):
        self.matcher = matcher = DatabaseMatcher(spec["url"])
        error = spec.get("error", "OperationalError")
        where = make_url(spec["url"]).render_as_string(hide_password=True)
        pattern = _table_pattern(spec["table"]) if spec["kind"] == "sql_error" else None
        points = spec.get("on", list(POINTS)) if pattern is None else ["execute"]
        message = f"mlchaos: injected connector failure ({spec['kind']} on {where})"

        def before_cursor_execute(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> tuple[str, Any]:
            if (
                (pattern is None or pattern.search(statement))
                and not context.execution_options.get(INTERNAL_OPTION)
                and injector.roll("execute")
            ):
                raise _error(conn.dialect, error, message)
            return statement, parameters

        def do_connect(
            dialect: Dialect, conn_rec: Any, cargs: Any, cparams: dict[str, Any]
        ) -> None:
            if matcher.matches_connect(dialect, cargs, cparams) and injector.roll("connect"):
                raise _error(dialect, error, message)

        self.listeners: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []
        if "execute" in points:
            self.listeners.append(
                ("before_cursor_execute", before_cursor_execute, {"retval": True})
            )
        if "connect" in points:
            self.listeners.append(("do_connect", do_connect, {}))
        self.engines: weakref.WeakSet[Engine] = weakref.WeakSet()

    def arm(self, engine: Engine) -> None:
        """Listen on ``engine`` if it points at the target database (caller holds ``_lock``)."""
        if engine in self.engines or engine.dialect.name != self.matcher.backend:
            return
        try:
            if not self.matcher.matches_engine(engine.dialect, engine.url):
                return
        except Exception:  # noqa: BLE001 - an engine we cannot place is not the target
            log.debug("mlchaos: cannot match engine %r", engine, exc_info=True)
            return
        for target in (engine, engine.dialect):
            if "_has_events" not in vars(target):
                _pristine[target] = None
        for name, fn, kw in self.listeners:
            event.listen(engine, name, fn, **kw)
        self.engines.add(engine)

    def disarm(self) -> list[Engine]:
        """Remove the listeners from every engine; returns those engines."""
        engines = list(self.engines)
        for engine in engines:
            for name, fn, _ in self.listeners:
                if event.contains(engine, name, fn):
                    event.remove(engine, name, fn)
        self.engines = weakref.WeakSet()
        return engines


_lock = threading.RLock()
_rules: dict[int, _Rule] = {}
#: engines / dialects whose ``_has_events`` flag was unset before a rule armed them
_pristine: weakref.WeakKeyDictionary[Any, None] = weakref.WeakKeyDictionary()
_original_init: Callable[..., None] | None = None


def _has_listeners(target: Any) -> bool:
    dispatch = target.dispatch
    return any(getattr(dispatch, name) for name in dispatch._event_names)


def _restore(engine: Engine) -> None:
    """Give an engine no rule listens on any more SQLAlchemy's event-free fast path back:
    ``event.remove`` leaves ``_has_events`` set, which costs ~3 us on every statement."""
    if any(engine in rule.engines for rule in _rules.values()):
        return
    for target in (engine, engine.dialect):
        if target in _pristine and not _has_listeners(target):
            vars(target).pop("_has_events", None)
            del _pristine[target]


def _arm_all(engine: Engine) -> None:
    if isinstance(engine, OptionEngineMixin):  # shares its parent's listeners
        return
    with _lock:
        for rule in _rules.values():
            rule.arm(engine)


def _wrap_engine_init() -> None:
    """Arm every engine created from now on (until the last rule is removed)."""
    global _original_init
    if _original_init is not None:
        return
    original = Engine.__init__

    @functools.wraps(original)
    def __init__(self: Engine, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _arm_all(self)

    _original_init = original
    Engine.__init__ = __init__  # type: ignore[method-assign]


def _unwrap_engine_init() -> None:
    global _original_init
    current = Engine.__dict__.get("__init__")
    if _original_init is not None and getattr(current, "__wrapped__", None) is _original_init:
        Engine.__init__ = _original_init  # type: ignore[method-assign,assignment]
    _original_init = None


def _existing_engines() -> list[Engine]:
    """Engines alive in this process (a heap walk, once per install)."""
    return [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, Engine) and not isinstance(obj, OptionEngineMixin)
    ]


def install(spec: dict[str, Any], injector: Injector) -> Callable[[], None]:
    """Arm ``spec``'s listeners on every engine pointing at its database, made before or after;
    returns the function that removes them. Engines of other databases get no listener."""
    rule = _Rule(spec, injector)
    with _lock:
        _rules[id(rule)] = rule
        _wrap_engine_init()
        for engine in _existing_engines():
            rule.arm(engine)

    def uninstall() -> None:
        with _lock:
            if _rules.pop(id(rule), None) is None:
                return
            if not _rules:
                _unwrap_engine_init()
            for engine in rule.disarm():
                _restore(engine)

    return uninstall
