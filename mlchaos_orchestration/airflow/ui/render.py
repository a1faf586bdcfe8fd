"""HTML of the Resilience view. Every value from the ledger is HTML-escaped; no scripts.

Links are relative to the app (so it works under any mount prefix), except the links to Airflow
run pages, which start at ``ui_base`` (Airflow's base URL path) and open in the top window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from mlchaos_orchestration.airflow.ui.data import SINCE_CHOICES, LeaseRow, Snapshot

VERDICT_CLASSES = frozenset(
    {"caught", "silent", "unalerted", "false_alarm", "clean", "not_applied", "error"}
)
REFRESH_S = 15
WEEKLY_DAG = "mlchaos_resilience_weekly"

# Airflow 3's look: Chakra gray scale, blue links, 14px system font; dark when the OS is dark.
_CSS = """:root{color-scheme:light dark;--fg:#18181b;--muted:#52525b;--bg:#fff;--head:#f4f4f5;
--line:#e4e4e7;--link:#1d4ed8;--ok:#dcfce7;--bad:#fee2e2;--warn:#fef9c3;--na:#e4e4e7;--btn:#b91c1c}
@media (prefers-color-scheme:dark){:root{--fg:#f4f4f5;--muted:#a1a1aa;--bg:#09090b;--head:#18181b;
--line:#3f3f46;--link:#93c5fd;--ok:#14532d;--bad:#7f1d1d;--warn:#713f12;--na:#3f3f46;--btn:#ef4444}}
body{font-family:Inter,system-ui,-apple-system,"Segoe UI",sans-serif;font-size:14px;margin:16px;
color:var(--fg);background:var(--bg)}h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:20px 0 6px}a{color:var(--link)}
table{border-collapse:collapse;margin:6px 0 16px;width:100%}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top;
font-size:13px}
th{background:var(--head);font-weight:600}.muted{color:var(--muted);font-size:12px}
.v{font-weight:600;border-radius:4px;padding:1px 6px}.v-caught,.v-clean{background:var(--ok)}
.v-silent,.v-error{background:var(--bad)}.v-unalerted,.v-false_alarm{background:var(--warn)}
.v-not_applied{background:var(--na)}form.filters{display:flex;gap:12px;align-items:end;flex-wrap:wrap}
label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
select,button{font:inherit;padding:3px 6px;border:1px solid var(--line);border-radius:4px;
background:var(--bg);color:var(--fg)}button.danger{border-color:var(--btn);color:var(--btn)}
.notice{padding:8px 12px;border-radius:4px;background:var(--head);border:1px solid var(--line)}
code{font-size:12px}"""


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
        return '<span class="muted" data-verdict="pending">pending</span>'
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


def airflow_run_href(ui_base: str, dag_id: str, run_id: str) -> str:
    """The Airflow UI page of a DAG run."""
    return f"{ui_base.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe=':+')}"


def _links(snap: Snapshot, run: dict[str, Any], ui_base: str) -> str:
    links = []
    run_key = (run.get("meta") or {}).get("run_key")
    if run.get("orchestrator") == "airflow" and run_key and run.get("pipeline"):
        href = airflow_run_href(ui_base, str(run["pipeline"]), str(run_key))
        links.append(
            f'<a href="{_text(href)}" target="_top" data-testid="airflow-run">Airflow run</a>'
        )
    report = snap.report_of(run.get("suite_id"))
    if report is not None:
        links.append(_report_link(report, "Report", "run-report"))
    return " · ".join(links)


def _report_link(report: Any, label: str, test_id: str) -> str:
    href = f"reports/{quote(report.name, safe='')}/report.html"
    return (
        f'<a href="{_text(href)}" target="_blank" rel="noopener" data-testid="{test_id}">'
        f"{_text(label)}</a>"
    )


def _run_rows(snap: Snapshot, ui_base: str) -> Iterable[list[str]]:
    from mlchaos_orchestration.airflow.verdicts import fault_summary

    for run in snap.runs:
        detail = run.get("verdict_detail") or {}
        yield [
            _when(run.get("started_at")),
            _text(run.get("experiment")),
            _text(run.get("pipeline")),
            f'<span data-testid="fault">{_text(fault_summary(run))}</span>',
            "control" if run.get("control") else "fault",
            _text(run.get("status")),
            _verdict(run.get("verdict")),
            _seconds(detail.get("detection_latency_s")),
            _seconds(detail.get("alert_latency_s")),
            _text(detail.get("reason")),
            _links(snap, run, ui_base),
            f"<code>{_text(run.get('id'))}</code>",
        ]


def _select(name: str, label: str, current: str, options: Sequence[tuple[str, str]]) -> str:
    items = "".join(
        f'<option value="{_text(v)}"{" selected" if v == current else ""}>{_text(t)}</option>'
        for v, t in options
    )
    return f'<label>{_text(label)}<select name="{name}">{items}</select></label>'


def _filters(snap: Snapshot) -> str:
    f = snap.filters
    return (
        '<form class="filters" method="get" action="./" data-testid="filters">'
        + _select("dag", "DAG / pipeline", f.dag, [("", "all"), *((p, p) for p in snap.pipelines)])
        + _select("verdict", "Verdict", f.verdict, [("", "all"), *((v, v) for v in snap.verdicts)])
        + _select("since", "Started", f.since, [(k, k) for k in SINCE_CHOICES])
        + '<button type="submit">Filter</button></form>'
    )


def _report_section(snap: Snapshot) -> str:
    latest = snap.latest
    if latest is not None:
        summary = latest.summary or {}
        verdicts = ", ".join(
            f"{k}: {v}" for k, v in sorted((summary.get("verdicts") or {}).items())
        )
        score = summary.get("resilience_score")
        score_text = f"resilience score {score:.2f}; " if isinstance(score, (int, float)) else ""
        older = "".join(
            f"<li>{_report_link(r, r.name, 'older-report')} "
            f'<span class="muted">{_text(r.target)}</span></li>'
            for r in snap.reports[1:6]
        )
        return (
            f"<p>{_report_link(latest, f'Latest report: {latest.name}', 'report-link')} "
            f'<span class="muted">({_text(latest.target)}; {_when(latest.created_at)}; '
            f"{_text(score_text)}{_text(verdicts)})</span></p>"
            + (f'<ul class="muted">{older}</ul>' if older else "")
        )
    if snap.report is not None:
        return (
            '<p><a href="report" target="_blank" rel="noopener" data-testid="report-link">'
            "Open the latest resilience report</a></p>"
        )
    return (
        '<p class="muted" data-testid="report-missing">No report yet: the weekly DAG '
        f"<code>{WEEKLY_DAG}</code> publishes one (set <code>MLCHAOS_REPORTS_LOCATION</code>).</p>"
    )


def _lease_rows(leases: list[LeaseRow]) -> Iterable[list[str]]:
    for x in leases:
        yield [
            _text(x.fault),
            _text(x.pipeline),
            _text(x.experiment),
            "<br>".join(_text(t) for t in x.targets),
            _text(x.scope),
            _text(x.state),
            _when(x.expires_at),
            f"<code>{_text(x.id)}</code>",
            f'<a href="abort?run={quote(x.run_id, safe="")}" data-testid="abort">Abort…</a>',
        ]


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f"<title>{_text(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>"
    )


def render_page(snap: Snapshot, *, ui_base: str = "/", notice: str | None = None) -> str:
    """The full Resilience page."""
    runs = _table(
        [
            "Started",
            "Experiment",
            "Pipeline",
            "Fault and parameters",
            "Kind",
            "Status",
            "Verdict",
            "Detection",
            "Alert",
            "Reason",
            "Links",
            "Ledger id",
        ],
        _run_rows(snap, ui_base),
        "No experiment runs match."
        if snap.filters.dag or snap.filters.verdict
        else "No experiment runs recorded yet.",
        "runs",
    )
    leases = _table(
        ["Fault", "Pipeline", "Experiment", "Targets", "Scope", "State", "Expires", "Lease", ""],
        _lease_rows(snap.leases),
        "No active fault leases.",
        "leases",
    )
    flash = f'<p class="notice" data-testid="notice">{_text(notice)}</p>' if notice else ""
    return _page(
        "mlchaos resilience",
        f'<p class="muted"><a href="{_text(ui_base)}" data-testid="airflow-home">Airflow</a>'
        " / Browse / Resilience</p><h1>Resilience</h1>"
        '<p class="muted">Chaos experiments recorded in the mlchaos ledger; refreshes every '
        f'{REFRESH_S} s. <a href="api/runs">JSON</a></p>{flash}'
        f"<h2>Reports</h2>{_report_section(snap)}<h2>Active faults</h2>{leases}"
        f"<h2>Experiment runs</h2>{_filters(snap)}{runs}",
        refresh=not notice,
    )


def render_abort_confirm(run_id: str, leases: list[LeaseRow]) -> str:
    """The confirmation page of an abort (a POST form; nothing happens before it is sent)."""
    mine = [x for x in leases if x.run_id == run_id]
    items = "".join(
        f"<li>{_text(x.fault)} on {', '.join(_text(t) for t in x.targets)}</li>" for x in mine
    )
    return _page(
        "Abort chaos run",
        "<h1>Abort this chaos run?</h1>"
        f"<p>Run <code>{_text(run_id)}</code>: every active fault is restored now "
        f"(the same as <code>mlchaos abort --run {_text(run_id)}</code>).</p>"
        f"<ul>{items or '<li>no active fault left</li>'}</ul>"
        '<form method="post" action="abort" data-testid="abort-form">'
        f'<input type="hidden" name="run" value="{_text(run_id)}">'
        '<button type="submit" class="danger" data-testid="abort-confirm">Abort and restore now'
        '</button> <a href="./">Cancel</a></form>',
    )
