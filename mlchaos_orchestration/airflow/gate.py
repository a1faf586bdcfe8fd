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
    """Validate data with a GX suite spec; the task fails when any expectation fails.

    The frame comes from exactly one of: ``loader(context) -> DataFrame``, ``sql`` run on the
    SQLAlchemy ``conn_url``, or a file ``path`` (parquet / csv / jsonl). ``sql``, ``conn_url`` and
    ``path`` are templated (e.g. ``{{ ds }}``); ``sql`` may use ``:ds`` as a bind parameter.
    """

    template_fields = ("sql", "conn_url", "path")
    ui_color = "#fbe9b7"
    is_mlchaos_gate = True

    def __init__(
        self,
        *,
        suite: str | Path | dict[str, Any],
        loader: Callable[[Any], Any] | None = None,
        sql: str | None = None,
        conn_url: str | None = None,
        path: str | None = None,
        profile_hints: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        #: key / label / timestamp_column of the data: a clean control run records a profile
        #: of what passed the gate, which the mutation report takes its suggested bounds from
        self.profile_hints = dict(profile_hints or {})
        sources = [s for s in (loader, sql, path) if s is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of loader, sql (with conn_url) or path")
        if sql is not None and not conn_url:
            raise ValueError("sql needs conn_url (a SQLAlchemy URL)")
        self.suite = str(suite) if isinstance(suite, Path) else suite
        self.loader, self.sql, self.conn_url, self.path = loader, sql, conn_url, path

    def load(self, context: Any) -> Any:
        """The frame to validate."""
        if self.loader is not None:
            return self.loader(context)
        if self.sql is not None:
            import pandas as pd
            import sqlalchemy as sa

            engine = sa.create_engine(str(self.conn_url))
            try:
                with engine.connect() as conn:
                    return pd.read_sql(sa.text(self.sql), conn, params={"ds": context.get("ds")})
            finally:
                engine.dispose()
        from mlchaos_orchestration.core import formats

        path = Path(str(self.path))
        return formats.read_frame(path, formats.detect_format(path))

    def execute(self, context: Any) -> dict[str, Any]:
        from mlchaos_orchestration.errors import SpecError
        from mlchaos_orchestration.gates.gx import GateFailed, load_suite_specs, validate_frame

        try:
            spec = load_suite_specs(self.suite)
        except SpecError as exc:
            raise GateSuiteError(f"gate {self.task_id}: suite unusable: {exc}") from None
        frame = self.load(context)
        try:
            result = validate_frame(frame, spec)
        except SpecError as exc:  # unknown expectation type, kwargs GX rejects
            raise GateSuiteError(f"gate {self.task_id}: suite unusable: {exc}") from None
        if not result.success:
            raise GateFailed(result)
        self.log.info("gate passed: %s", result.summary())
        self._record_profile(context, frame)
        return {"success": True, "evaluated": result.evaluated, "rows": result.rows}

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
