"""What the Resilience view shows, read from the ledger and the reports folder (no web code)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlchaos_orchestration.core.ledger import Ledger

REPORTS_ENV = "MLCHAOS_REPORTS_DIR"


def reports_dir() -> Path:
    """Where ``mlchaos suite`` writes reports: ``$MLCHAOS_REPORTS_DIR`` or ``./reports``."""
    return Path(os.environ.get(REPORTS_ENV) or "reports").expanduser()


def latest_report() -> Path | None:
    """``<reports>/latest/report.html`` if it exists."""
    path = reports_dir() / "latest" / "report.html"
    return path if path.is_file() else None


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


@dataclass
class Snapshot:
    """Everything the view renders: recent runs (newest first), live leases, the latest report."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    leases: list[LeaseRow] = field(default_factory=list)
    report: Path | None = None

    def as_json(self) -> dict[str, Any]:
        """A JSON-able form (the report as a flag; its path is not exposed)."""
        return {
            "runs": [_run_json(r) for r in self.runs],
            "leases": [vars(lease) for lease in self.leases],
            "latest_report": self.report is not None,
        }


def _run_json(run: dict[str, Any]) -> dict[str, Any]:
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
    return {
        **{k: run.get(k) for k in keys},
        "reason": detail.get("reason"),
        "detection_latency_s": detail.get("detection_latency_s"),
        "alert_latency_s": detail.get("alert_latency_s"),
    }


def snapshot(ledger: Ledger | None = None, *, limit: int = 50) -> Snapshot:
    """Read recent runs and live leases from ``ledger`` (default: the configured one)."""
    ledger = ledger or Ledger()
    leases = [
        LeaseRow(
            id=x.id,
            run_id=x.run_id,
            fault=x.fault,
            targets=[t.describe() for t in x.targets],
            scope=x.scope,
            state=x.state,
            expires_at=x.expires_at,
        )
        for x in ledger.live_leases()
    ]
    return Snapshot(runs=ledger.list_runs(limit=limit), leases=leases, report=latest_report())
