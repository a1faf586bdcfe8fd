"""HTML of the Resilience view. Every value from the ledger is HTML-escaped; no scripts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from mlchaos_orchestration.airflow.ui.data import Snapshot

VERDICT_CLASSES = frozenset(
    {"caught", "silent", "unalerted", "false_alarm", "clean", "not_applied", "error"}
)
REFRESH_S = 15

_CSS = """body{font-family:system-ui,sans-serif;margin:16px;color:#1f2328}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;font-size:13px}th{background:#f6f8fa}.muted{color:#57606a;font-size:12px}
.v{font-weight:600;border-radius:4px;padding:1px 6px}.v-caught,.v-clean{background:#dafbe1}
.v-silent,.v-error{background:#ffebe9}.v-unalerted,.v-false_alarm{background:#fff8c5}
.v-not_applied{background:#eaeef2}"""


def _text(value: Any) -> str:
    return "" if value is None else escape(str(value), quote=True)


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{float(value):.2f} s"


def _verdict(value: str | None) -> str:
    if not value:
        return '<span class="muted">pending</span>'
    css = f" v-{value}" if value in VERDICT_CLASSES else ""
    return f'<span class="v{css}" data-verdict="{_text(value)}">{_text(value)}</span>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str, test_id: str) -> str:
    """A table whose cells are already-safe HTML fragments."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted" data-testid="{test_id}-empty">{_text(empty)}</p>'
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    return (
        f'<table data-testid="{test_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _run_rows(runs: list[dict[str, Any]]) -> Iterable[list[str]]:
    for run in runs:
        detail = run.get("verdict_detail") or {}
        yield [
            _when(run.get("started_at")),
            _text(run.get("experiment")),
            _text(run.get("pipeline")),
            _text(run.get("orchestrator")),
            "control" if run.get("control") else "fault",
            _text(run.get("status")),
            _verdict(run.get("verdict")),
            _seconds(detail.get("detection_latency_s")),
            _seconds(detail.get("alert_latency_s")),
            _text(detail.get("reason")),
            f"<code>{_text(run.get('id'))}</code>",
        ]


def render_page(snap: Snapshot) -> str:
    """The full Resilience page (relative links, so it works under any mount prefix)."""
    runs = _table(
        [
            "Started",
            "Experiment",
            "Pipeline",
            "Orchestrator",
            "Kind",
            "Status",
            "Verdict",
            "Detection",
            "Alert",
            "Reason",
            "Run id",
        ],
        _run_rows(snap.runs),
        "No experiment runs recorded yet.",
        "runs",
    )
    leases = _table(
        ["Fault", "Targets", "Scope", "State", "Expires", "Run id", "Lease id"],
        (
            [
                _text(x.fault),
                "<br>".join(_text(t) for t in x.targets),
                _text(x.scope),
                _text(x.state),
                _when(x.expires_at),
                f"<code>{_text(x.run_id)}</code>",
                f"<code>{_text(x.id)}</code>",
            ]
            for x in snap.leases
        ),
        "No active fault leases.",
        "leases",
    )
    report = (
        '<p><a href="report" target="_blank" rel="noopener" data-testid="report-link">'
        "Open the latest resilience report</a></p>"
        if snap.report
        else '<p class="muted" data-testid="report-missing">No report yet: run '
        "<code>mlchaos suite</code>.</p>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_S}"><title>mlchaos resilience</title>'
        f"<style>{_CSS}</style></head><body><h1>Resilience</h1>"
        f'<p class="muted">Chaos experiments recorded in the mlchaos ledger; refreshes every '
        f'{REFRESH_S} s. <a href="api/runs">JSON</a></p>'
        f"<h2>Latest report</h2>{report}<h2>Active fault leases</h2>{leases}"
        f"<h2>Recent experiment runs</h2>{runs}</body></html>"
    )
