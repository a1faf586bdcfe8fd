"""Great Expectations gate operator: load a frame, validate it with
:mod:`mlchaos_orchestration.gates.gx`, fail the task with ``GateFailed`` when expectations fail
(a detection). A suite that cannot be built (unknown expectation type, kwargs GX rejects) fails
the task with :class:`GateSuiteError` without retries: a crash, never a detection. GX and pandas
are imported in ``execute``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlchaos_orchestration.errors import MlchaosError


class GateSuiteError(MlchaosError, AirflowFailException):
    """The gate's suite is broken (it checked nothing): a crash, not a failed check."""


class GreatExpectationsGateOperator(BaseOperator):
    """Validate data with a GX suite; the task fails when any expectation fails.

    The suite is a suite spec (``suite``: YAML / GX JSON export / mapping), or an existing GX
    project (``gx_project_dir``: its file data context) with a ``checkpoint`` (run with its
    actions: Data Docs, stores, notifications) or one of its suites (``suite_name``).

    The frame comes from at most one of: ``loader(context) -> DataFrame``, ``sql`` run on a
    database (``conn_id``: an Airflow Connection, or ``conn_url``: a SQLAlchemy URL), or a file
    ``path`` (parquet / csv / jsonl). Only a checkpoint may go without one (it reads its own
    data); given one, it is the batch of the checkpoint's dataframe assets. ``sql``,
    ``conn_url``, ``path``, ``gx_project_dir``, ``checkpoint`` and ``suite_name`` are templated
    (e.g. ``{{ ds }}``); ``sql`` may use ``:ds`` as a bind parameter.
    """

    template_fields = ("sql", "conn_url", "path", "gx_project_dir", "checkpoint", "suite_name")
    ui_color = "#fbe9b7"
    is_mlchaos_gate = True

    def __init__(
        self,
        *,
        suite: str | Path | dict[str, Any] | None = None,
        loader: Callable[[Any], Any] | None = None,
        sql: str | None = None,
        conn_url: str | None = None,
        conn_id: str | None = None,
        path: str | None = None,
        gx_project_dir: str | Path | None = None,
        checkpoint: str | None = None,
        suite_name: str | None = None,
        profile_hints: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        #: key / label / timestamp_column of the data: a clean control run records a profile
        #: of what passed the gate, which the mutation report takes its suggested bounds from
        self.profile_hints = dict(profile_hints or {})
        if (suite is None) == (gx_project_dir is None):
            raise ValueError("give exactly one of suite or gx_project_dir")
        if gx_project_dir is not None and bool(checkpoint) == bool(suite_name):
            raise ValueError("gx_project_dir needs exactly one of checkpoint or suite_name")
        if gx_project_dir is None and (checkpoint or suite_name):
            raise ValueError("checkpoint / suite_name name parts of a GX project: gx_project_dir")
        sources = [s for s in (loader, sql, path) if s is not None]
        if len(sources) > 1 or (not sources and not checkpoint):
            raise ValueError("give exactly one of loader, sql (with conn_id or conn_url) or path")
        if sql is not None and bool(conn_url) == bool(conn_id):
            raise ValueError("sql needs exactly one of conn_id (an Airflow Connection) or conn_url")
        self.suite = str(suite) if isinstance(suite, Path) else suite
        self.gx_project_dir = None if gx_project_dir is None else str(gx_project_dir)
        self.checkpoint, self.suite_name = checkpoint, suite_name
        self.loader, self.sql, self.path = loader, sql, path
        self.conn_url, self.conn_id = conn_url, conn_id

    def load(self, context: Any) -> Any:
        """The frame to validate (None: the checkpoint reads its own data)."""
        if self.loader is not None:
            return self.loader(context)
        if self.sql is not None:
            import pandas as pd
            import sqlalchemy as sa

            url = self.conn_url or sqlalchemy_url(str(self.conn_id))
            engine = sa.create_engine(url)
            try:
                with engine.connect() as conn:
                    return pd.read_sql(sa.text(self.sql), conn, params={"ds": context.get("ds")})
            finally:
                engine.dispose()
        if self.path is None:
            return None
        from mlchaos_orchestration.core import formats

        path = Path(str(self.path))
        return formats.read_frame(path, formats.detect_format(path))

    def execute(self, context: Any) -> dict[str, Any]:
        from mlchaos_orchestration.errors import SpecError
        from mlchaos_orchestration.gates import gx

        try:
            check = self._check()
        except SpecError as exc:
            raise self._unusable(exc) from None
        frame = self.load(context)
        try:
            if isinstance(check, gx.GXProject):
                result = gx.validate_project(check, frame)
            else:
                result = gx.validate_frame(frame, check)
        except SpecError as exc:  # unknown expectation type, kwargs GX rejects, no checkpoint
            raise self._unusable(exc) from None
        if not result.success:
            raise gx.GateFailed(result)
        self.log.info("gate passed: %s", result.summary())
        for site in result.data_docs:
            self.log.info("Data Docs: %s", site)
        if frame is not None:
            self._record_profile(context, frame)
        return {
            "success": True,
            "evaluated": result.evaluated,
            "rows": result.rows,
            "data_docs": result.data_docs,
        }

    def _unusable(self, exc: Exception) -> GateSuiteError:
        return GateSuiteError(f"gate {self.task_id}: suite unusable: {exc}")

    def _check(self) -> Any:
        """The suite spec or the GX project (SpecError when it cannot be used)."""
        from mlchaos_orchestration.gates import gx

        if self.gx_project_dir is not None:
            return gx.GXProject(self.gx_project_dir, self.checkpoint, self.suite_name)
        assert self.suite is not None
        return gx.load_suite_specs(self.suite)

    def _record_profile(self, context: Any, frame: Any) -> None:
        """On a clean control chaos run, record a profile of the data that passed."""
        from mlchaos_orchestration.airflow.context import chaos_run, run_date
        from mlchaos_orchestration.core.ledger import Ledger
        from mlchaos_orchestration.gates.mutation import profile_frame

        run = chaos_run(context)
        if run is None or not run.experiment.control:
            return
        hints = {**self.profile_hints, "ds": run_date(context)}
        Ledger().record(
            run.run_id, "data_profile", source=self.task_id, profile=profile_frame(frame, **hints)
        )


#: Airflow connection types whose SQLAlchemy dialect has another name
_DIALECTS = {"postgres": "postgresql", "mssql": "mssql+pymssql", "mysql": "mysql+mysqldb"}


def _dialect(conn_type: str) -> str:
    """SQLAlchemy's name for ``conn_type``; PostgreSQL with the driver that is installed."""
    import importlib.util

    name = _DIALECTS.get(conn_type, conn_type)
    if name == "postgresql":
        found = [d for d in ("psycopg", "psycopg2") if importlib.util.find_spec(d) is not None]
        return f"postgresql+{found[0]}" if found else name
    return name


def sqlalchemy_url(conn_id: str) -> str:
    """The SQLAlchemy URL of Airflow connection ``conn_id``: its database hook's own URL when
    that provider is installed (``DbApiHook.sqlalchemy_url``), else one built from the
    connection's fields (SQLite: the host is the file path)."""
    import sqlalchemy as sa
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    try:
        url = getattr(conn.get_hook(), "sqlalchemy_url", None)
    except Exception:  # noqa: BLE001 - the connection type's provider is not installed
        url = None
    if url is None:
        kind = str(conn.conn_type or "")
        if kind == "sqlite":
            url = sa.engine.URL.create("sqlite", database=conn.host or conn.schema or None)
        else:
            url = sa.engine.URL.create(
                _dialect(kind),
                username=conn.login or None,
                password=conn.password or None,
                host=conn.host or None,
                port=conn.port or None,
                database=conn.schema or None,
            )
    if isinstance(url, sa.engine.URL):
        return url.render_as_string(hide_password=False)
    return str(url)
