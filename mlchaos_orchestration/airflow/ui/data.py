"""What the Resilience view shows, read from the ledger and the reports location (no web code)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlchaos_orchestration.core.ledger import Ledger

REPORTS_ENV = "MLCHAOS_REPORTS_DIR"
#: the "since" filter's choices: label -> hours (None: any time)
SINCE_CHOICES: dict[str, float | None] = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30, "all": None}


def reports_dir() -> Path:
    """Where ``mlchaos suite`` writes reports: ``$MLCHAOS_REPORTS_DIR`` or ``./reports``."""
    return Path(os.environ.get(REPORTS_ENV) or "reports").expanduser()


def latest_report() -> Path | None:
    """``<reports>/latest/report.html`` if it exists (reports written without a location)."""
    path = reports_dir() / "latest" / "report.html"
    return path if path.is_file() else None


def report_store() -> Any:
    """Where published reports are read: the ``reports_location`` setting, else
    ``$MLCHAOS_HOME/reports`` (the weekly DAG's default, :mod:`..resilience`)."""
    from mlchaos_orchestration.reporting.location import ReportsLocation, reports_location
    from mlchaos_orchestration.settings import get_settings

    return reports_location() or ReportsLocation(str(get_settings().data_dir / "reports"))


def published_reports(limit: int = 20) -> list[Any]:
    """Reports published to :func:`report_store` (``PublishedReport``), newest first; [] when
    it cannot be read."""
    try:
        return report_store().list(limit=limit)
    except Exception:  # noqa: BLE001 - an unreachable store must not take the view down
        return []


@dataclass
class Filters:
    """The view's filters (query string): DAG / pipeline, verdict, how far back."""

    dag: str = ""
    verdict: str = ""
    since: str = "all"

    @classmethod
    def parse(cls, dag: str = "", verdict: str = "", since: str = "all") -> Filters:
        return cls(
            dag=dag.strip(),
            verdict=verdict.strip(),
            since=since if since in SINCE_CHOICES else "all",
        )

    def keep(self, run: dict[str, Any], now: float) -> bool:
        if self.dag and run.get("pipeline") != self.dag:
            return False
        if self.verdict and (run.get("verdict") or "pending") != self.verdict:
            return False
        hours = SINCE_CHOICES[self.since]
        return hours is None or (run.get("started_at") or 0) >= now - hours * 3600


@dataclass
class LeaseRow:
    """One live fault lease, flattened for display."""

    id: str
    run_id: str
    fault: str
    targets: list[str]
    scope: str | None
    state: str
    expires_at: float
    pipeline: str | None = None
    experiment: str | None = None


@dataclass
class Snapshot:
    """Everything the view renders: recent runs (newest first, filtered), live leases, reports."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    leases: list[LeaseRow] = field(default_factory=list)
    report: Path | None = None
    reports: list[Any] = field(default_factory=list)
    filters: Filters = field(default_factory=Filters)
    pipelines: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)

    @property
    def latest(self) -> Any:
        """The newest published report (None if none)."""
        return self.reports[0] if self.reports else None

    def report_of(self, suite_id: str | None) -> Any:
        """The published report of a suite (None if not published)."""
        return next((r for r in self.reports if suite_id and r.suite_id == suite_id), None)

    def as_json(self) -> dict[str, Any]:
        """A JSON-able form (the legacy report as a flag; no file paths)."""
        return {
            "runs": [self._run_json(r) for r in self.runs],
            "leases": [vars(lease) for lease in self.leases],
            "latest_report": self.report is not None or self.latest is not None,
            "reports": [asdict(r) for r in self.reports],
        }

    def _run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        from mlchaos_orchestration.airflow.verdicts import fault_summary

        keys = (
            "id",
            "experiment",
            "pipeline",
            "orchestrator",
            "control",
            "status",
            "started_at",
            "ended_at",
            "verdict",
            "suite_id",
        )
        detail = run.get("verdict_detail") or {}
        report = self.report_of(run.get("suite_id"))
        return {
            **{k: run.get(k) for k in keys},
            "run_key": (run.get("meta") or {}).get("run_key"),
            "fault": fault_summary(run),
            "report": report.name if report else None,
            "reason": detail.get("reason"),
            "detection_latency_s": detail.get("detection_latency_s"),
            "alert_latency_s": detail.get("alert_latency_s"),
        }


def snapshot(
    ledger: Ledger | None = None, *, limit: int = 50, filters: Filters | None = None
) -> Snapshot:
    """Read recent runs (``filters`` applied, at most ``limit``), live leases and the reports."""
    ledger = ledger or Ledger()
    filters = filters or Filters()
    recent = ledger.list_runs(limit=max(limit, 500))
    now = time.time()
    by_id = {r["id"]: r for r in recent}
    leases = [
        LeaseRow(
            id=x.id,
            run_id=x.run_id,
            fault=x.fault,
            targets=[t.describe() for t in x.targets],
            scope=x.scope,
            state=x.state,
            expires_at=x.expires_at,
            pipeline=(by_id.get(x.run_id) or {}).get("pipeline"),
            experiment=(by_id.get(x.run_id) or {}).get("experiment"),
        )
        for x in ledger.live_leases()
    ]
    return Snapshot(
        runs=[r for r in recent if filters.keep(r, now)][:limit],
        leases=leases,
        report=latest_report(),
        reports=published_reports(),
        filters=filters,
        pipelines=sorted({str(r["pipeline"]) for r in recent if r.get("pipeline")}),
        verdicts=sorted({str(r.get("verdict") or "pending") for r in recent}),
    )
