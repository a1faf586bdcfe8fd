"""Reports of a resilience suite: ``journal.json`` (the record), ``junit.xml`` (for CI) and a
self-contained ``report.html`` (scorecard, fault x gate matrix, scores, trend and latency plots).

Everything is derived from ledger runs; every data value rendered into HTML is escaped.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from html import escape
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.reporting.scoring import mutation_report, resilience_score

FAILING = frozenset({"silent", "unalerted", "false_alarm", "gate_crashed"})
SKIPPED = frozenset({"not_reached", "not_applied"})
COLORS = {
    "caught": "#1a7f37",
    "clean": "#1a7f37",
    "unalerted": "#bf8700",
    "silent": "#cf222e",
    "false_alarm": "#8250df",
    "gate_crashed": "#953800",
    "not_reached": "#6e7781",
    "error": "#57606a",
    "not_applied": "#8c959f",
}


def is_failure(run: dict[str, Any]) -> bool:
    """A failing test case: silent, false_alarm, gate_crashed, and unalerted unless the
    experiment declared no alert channel (``alert: {expected: false}``)."""
    if run.get("verdict") == "unalerted" and run.get("alert_expected") is False:
        return False
    return run.get("verdict") in FAILING


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds")


# ------------------------------------------------------------------------------------- journal
def run_record(ledger: Ledger, run: dict[str, Any]) -> dict[str, Any]:
    """One journal record: experiment, faults, events, verdict, latencies, restore proof."""
    exp = (run.get("meta") or {}).get("experiment") or {}
    events = ledger.events(run["id"])
    verdict = run.get("verdict_detail") or {}
    proofs = [p for e in events if e.kind == "restored" for p in e.data.get("proofs", [])]
    touched = any(e.kind == "fault_applied" and e.data.get("backed_up") for e in events)
    return {
        "run_id": run["id"],
        "suite_id": run.get("suite_id"),
        "pipeline": run.get("pipeline"),
        "orchestrator": run.get("orchestrator"),
        "experiment": run["experiment"],
        "control": bool(run.get("control")),
        "expect": exp.get("expect"),
        "hypothesis": exp.get("hypothesis", ""),
        "gate": exp.get("gate"),
        "consumer": exp.get("consumer"),
        "seed": run.get("seed"),
        "faults": exp.get("faults", []),
        "started_at": iso(run.get("started_at")),
        "ended_at": iso(run.get("ended_at")),
        "events": [
            {"kind": e.kind, "ts": e.ts, "at": iso(e.ts), "source": e.source, "data": e.data}
            for e in events
            if e.kind != "data_profile"
        ],
        "verdict": run.get("verdict") or "error",
        "reason": verdict.get("reason", "")
        or ("no verdict: the run never finished" if not run.get("verdict") else ""),
        "halted_by": verdict.get("halted_by"),
        "halted_by_gate": verdict.get("halted_by_gate"),
        "alert_expected": verdict.get("alert_expected", True),
        "detection_latency_s": verdict.get("detection_latency_s"),
        "first_failure_latency_s": verdict.get("first_failure_latency_s"),
        "alert_latency_s": verdict.get("alert_latency_s"),
        "retries": verdict.get("retries", 0),
        "evidence": verdict.get("evidence") or {},
        "evidence_text": evidence_lines(verdict.get("evidence") or {}),
        "restore_proof": {
            "stored_data_touched": touched,
            "all_identical": all(p.get("identical") for p in proofs) if proofs else not touched,
            "targets": proofs,
        },
    }


def _failed_check(failure: Any) -> str:
    """One failed check of a gate: ``Expectation(column)`` from our GX gate's dicts, or the
    text another adapter recorded (a user gate's own message)."""
    if isinstance(failure, dict):
        column = failure.get("column")
        return str(failure.get("expectation")) + (f"({column})" if column else "")
    return str(failure)


def evidence_lines(evidence: dict[str, Any]) -> list[str]:
    """The verdict's evidence as short sentences: what reached what, rows changed, calls
    intercepted / failed, the final failure, retries, what the gate did, who alerted."""
    lines: list[str] = []
    for f in evidence.get("faults") or []:
        where = ", ".join(map(str, f.get("targets") or []))
        site = f.get("site") or {}
        if not where and site:
            where = f"input {site.get('input')} of {site.get('step')} (in memory)"
        head = f"{f.get('fault')}" + (f" on {where}" if where else "")
        facts = []
        for target, digest in (f.get("fingerprint") or {}).items():
            facts.append(f"fingerprint of {target} at apply: {str(digest)[:12]}")
        if f.get("rows_changed") is not None:
            facts.append(f"{f['rows_changed']} rows changed")
        calls = f.get("calls")
        if calls:
            facts.append(f"{calls['intercepted']} calls intercepted, {calls['failed']} failed")
        elif f.get("hook"):
            facts.append("no interceptor stats recorded")
        lines.append(head + (": " + "; ".join(facts) if facts else ""))
        for r in f.get("reads") or []:
            state = {True: "the faulted content", False: "rewritten content"}.get(
                r.get("matches"), "content it could not check"
            )
            lines.append(
                f"{r.get('role')} {r.get('task')} started {r.get('at_s')} s after the fault "
                f"and found {state} in {r.get('target')}"
            )
        if f.get("why"):
            lines.append(f"reached: {_yes_no(f.get('reached'))} ({f['why']})")
    for r in evidence.get("retries") or []:
        lines.append(
            f"retry: {r.get('task')} attempt {r.get('attempt')} failed: {r.get('message')}"
        )
    halt = evidence.get("halt")
    if halt:
        lines.append(
            f"final failure: {halt.get('kind')} by {halt.get('task')}"
            + (f" (attempt {halt['attempt']})" if halt.get("attempt") else "")
            + (f": {halt['message']}" if halt.get("message") else "")
        )
    gate = evidence.get("gate") or {}
    if gate.get("crashed"):
        lines.append(
            f"gate {gate.get('task')} CRASHED without running its checks: "
            f"{gate.get('error_type') or 'error'}: {gate.get('message')}"
        )
    elif gate.get("ran_checks"):
        found = ", ".join(_failed_check(x) for x in gate.get("failed") or [])
        outcome = "passed" if gate.get("passed") else "found violations"
        lines.append(
            f"gate {gate.get('task')} ran its checks and {outcome}"
            + (f": {found}" if found else "")
        )
    consumer = evidence.get("consumer")
    if consumer:
        lines.append(f"consumer {consumer.get('task')} started")
    for a in evidence.get("alerts") or []:
        state = "delivered" if a.get("delivered") else "NOT delivered"
        status = f" ({a['status']})" if a.get("status") else ""
        lines.append(f"alert via {a.get('channel')}: {state}{status}")
    return lines


def _yes_no(value: Any) -> str:
    return {True: "yes", False: "no"}.get(value, "unknown")


def build_journal(
    ledger: Ledger,
    suite_id: str,
    *,
    title: str = "resilience suite",
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The journal of one suite: every run with the suite id, plus scores and history."""
    runs = sorted(ledger.list_runs(limit=10_000, suite_id=suite_id), key=lambda r: r["started_at"])
    records = [run_record(ledger, r) for r in runs]
    return {
        "title": title,
        "suite_id": suite_id,
        "generated_at": iso(dt.datetime.now().timestamp()),
        "meta": meta or {},
        "resilience_score": resilience_score(records),
        "mutation": mutation_report(records, _profiles(ledger, runs)),
        "history": score_history(ledger, exclude=suite_id),
        "runs": records,
    }


def _profiles(ledger: Ledger, runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Clean-data profiles recorded by control runs (``data_profile`` events), by orchestrator."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run.get("control"):
            for event in ledger.events(run["id"]):
                if event.kind == "data_profile" and isinstance(event.data.get("profile"), dict):
                    out[str(run.get("orchestrator"))] = event.data["profile"]
    return out


def score_history(
    ledger: Ledger, *, exclude: str | None = None, limit: int = 52
) -> list[dict[str, Any]]:
    """Resilience score of earlier suites (oldest first), from the ledger."""
    by_suite: dict[str, list[dict[str, Any]]] = {}
    for run in ledger.list_runs(limit=50_000):
        if run.get("suite_id") and run["suite_id"] != exclude:
            by_suite.setdefault(run["suite_id"], []).append(run)
    out = []
    for suite_id, runs in by_suite.items():
        rows = [{"control": r["control"], "verdict": r["verdict"]} for r in runs]
        out.append(
            {
                "suite_id": suite_id,
                "at": iso(min(r["started_at"] for r in runs)),
                "ts": min(r["started_at"] for r in runs),
                "score": resilience_score(rows),
            }
        )
    out.sort(key=lambda s: s["ts"])
    return out[-limit:]


# --------------------------------------------------------------------------------------- junit
def junit_xml(journal: dict[str, Any]) -> str:
    """One test case per experiment run: silent / unalerted / false_alarm / gate_crashed fail
    (an ``unalerted`` run that declared no alert channel passes), ``error`` errors,
    ``not_reached`` / ``not_applied`` are skipped with the reason. Each case's output holds the
    verdict's evidence."""
    runs = journal["runs"]
    suite = ET.Element(
        "testsuite",
        name="mlchaos",
        tests=str(len(runs)),
        failures=str(sum(is_failure(r) for r in runs)),
        errors=str(sum(r["verdict"] == "error" for r in runs)),
        skipped=str(sum(r["verdict"] in SKIPPED for r in runs)),
    )
    for run in runs:
        classname = f"{run['orchestrator']}.{run.get('pipeline') or 'pipeline'}"
        case = ET.SubElement(suite, "testcase", classname=classname, name=run["experiment"])
        duration = _duration(run)
        if duration is not None:
            case.set("time", f"{duration:.3f}")
        message = f"{run['verdict']}: {run['reason']}"
        evidence = "\n".join(run.get("evidence_text") or [])
        body = message + ("\n" + evidence if evidence else "")
        if is_failure(run):
            ET.SubElement(case, "failure", message=message, type=run["verdict"]).text = body
        elif run["verdict"] == "error":
            ET.SubElement(case, "error", message=message, type="error").text = body
        elif run["verdict"] in SKIPPED:
            ET.SubElement(case, "skipped", message=message).text = body
        ET.SubElement(case, "system-out").text = json.dumps(
            {
                "verdict": run["verdict"],
                "expect": run["expect"],
                "run_id": run["run_id"],
                "alert_expected": run.get("alert_expected", True),
                "retries": run.get("retries", 0),
                "evidence": run.get("evidence_text") or [],
            }
        )
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def _duration(run: dict[str, Any]) -> float | None:
    events = run.get("events") or []
    return events[-1]["ts"] - events[0]["ts"] if len(events) > 1 else None


# ---------------------------------------------------------------------------------------- html
def html_report(journal: dict[str, Any]) -> str:
    """A self-contained HTML page (no external resources); every data value is escaped."""
    runs = journal["runs"]
    score = journal["resilience_score"]
    mut = journal["mutation"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(journal['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(journal['title'])}</h1>",
        f"<p class='meta'>suite {escape(str(journal['suite_id']))} · generated "
        f"{escape(str(journal['generated_at']))}</p>",
        "<div class='cards'>",
        _card(
            "resilience score",
            "-" if score is None else f"{score:g}",
            "caught = 1, unalerted = 0.5, silent = 0; halved on a false alarm",
        ),
        _card(
            "gate mutation score",
            "-" if mut["score"] is None else f"{mut['killed']}/{mut['mutants']}",
            "mutants killed by a gate detection / mutants (crashes and other halts are no kills)",
        ),
        _card("runs", str(len(runs)), "control + fault experiments"),
        "</div>",
        "<h2>Fault × gate matrix</h2>",
        _matrix(runs),
        "<h2>Scorecard</h2>",
        _scorecard(runs),
        "<h2>Surviving mutants: checks the gate is missing</h2>",
        _survivors(mut),
        "<h2>Resilience score trend</h2>",
        _trend_svg(journal),
        "<h2>Detection latency</h2>",
        _latency_svg(runs),
    ]
    sweep = journal.get("sweep")
    if sweep:
        parts += ["<h2>Intensity sweep</h2>", _sweep(sweep)]
    parts.append("</body></html>")
    return "\n".join(parts)


def _card(title: str, value: str, note: str) -> str:
    return (
        f"<div class='card'><div class='t'>{escape(title)}</div>"
        f"<div class='v'>{escape(value)}</div><div class='n'>{escape(note)}</div></div>"
    )


def _badge(verdict: str) -> str:
    color = COLORS.get(verdict, "#57606a")
    return f"<span class='b' style='background:{color}'>{escape(verdict)}</span>"


def _matrix(runs: list[dict[str, Any]]) -> str:
    gates = sorted({f"{r['orchestrator']}: {r.get('gate') or '-'}" for r in runs})
    faults: dict[str, dict[str, str]] = {}
    for r in runs:
        row = faults.setdefault(r["experiment"], {})
        row[f"{r['orchestrator']}: {r.get('gate') or '-'}"] = r["verdict"]
    head = "".join(f"<th>{escape(g)}</th>" for g in gates)
    body = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{_badge(cells[g]) if g in cells else ''}</td>" for g in gates)
        + "</tr>"
        for name, cells in faults.items()
    )
    return f"<table><tr><th>experiment</th>{head}</tr>{body}</table>"


def _scorecard(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        faults = ", ".join(_fault_text(f) for f in r["faults"]) or "(clean control run)"
        ok = r["expect"] is None or r["expect"] == r["verdict"]
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{escape(str(v))}</td>" for v in (r["orchestrator"], r["experiment"], faults)
            )
            + f"<td>{_badge(r['verdict'])}</td><td>{escape(str(r['expect'] or '-'))}"
            f"{'' if ok else ' ⚠'}</td>"
            f"<td>{_num(r['detection_latency_s'])}</td><td>{_num(r['alert_latency_s'])}</td>"
            f"<td>{'yes' if r['restore_proof']['all_identical'] else 'NO'}</td>"
            f"<td>{escape(r['reason'])}</td><td>{_evidence_html(r)}</td></tr>"
        )
    head = (
        "<tr><th>orchestrator</th><th>experiment</th><th>faults</th><th>verdict</th>"
        "<th>expected</th><th>detection s</th><th>alert s</th><th>restored exactly</th>"
        "<th>reason</th><th>evidence</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _evidence_html(run: dict[str, Any]) -> str:
    lines = list(run.get("evidence_text") or [])
    if run.get("verdict") == "unalerted" and run.get("alert_expected") is False:
        lines.append("no alert channel declared (alert.expected: false): not a failure")
    if not lines:
        return "-"
    items = "".join(
        f"<li class='{'crash' if 'CRASHED' in line else ''}'>{escape(line)}</li>" for line in lines
    )
    return f"<ul class='ev'>{items}</ul>"


def _fault_text(fault: dict[str, Any]) -> str:
    """``name(param=value, ...)`` with parameters left at their defaults omitted."""
    from mlchaos_orchestration.errors import MlchaosError
    from mlchaos_orchestration.faults import get_fault_class

    try:
        fields = get_fault_class(str(fault.get("fault"))).model_fields
    except MlchaosError:
        fields = {}
    params = ", ".join(
        f"{k}={v}"
        for k, v in fault.items()
        if k != "fault"
        and not (
            k in fields
            and not fields[k].is_required()
            and fields[k].get_default(call_default_factory=True) == v
        )
    )
    return f"{fault.get('fault')}({params})"


def _survivors(mut: dict[str, Any]) -> str:
    if not mut["survivors"]:
        return "<p>None: every fault was caught.</p>"
    items = "".join(
        f"<li>{escape(', '.join(s.get('orchestrators', [])))} / {escape(s['experiment'])}: "
        f"{escape(s['what'])} "
        f"was not caught: add <code>{escape(s['expectation'] or 'a check for it')}</code>"
        f"{' (' + escape(s['why']) + ')' if s.get('why') else ''}</li>"
        for s in mut["survivors"]
    )
    return f"<ul>{items}</ul>"


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def _trend_svg(journal: dict[str, Any]) -> str:
    points = [h for h in journal["history"] if h["score"] is not None]
    if journal["resilience_score"] is not None:
        points = [*points, {"at": journal["generated_at"], "score": journal["resilience_score"]}]
    if not points:
        return "<p>No scores yet.</p>"
    w, h, pad = 640, 200, 30
    step = (w - 2 * pad) / max(1, len(points) - 1)
    xy = [
        (pad + i * step, h - pad - (h - 2 * pad) * p["score"] / 100) for i, p in enumerate(points)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(
        f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4'><title>{escape(str(p['at']))}: "
        f"{escape(str(p['score']))}</title></circle>"
        for (x, y), p in zip(xy, points, strict=True)
    )
    return (
        f"<svg width='{w}' height='{h}' role='img' aria-label='score trend'>"
        f"<line x1='{pad}' y1='{h - pad}' x2='{w - pad}' y2='{h - pad}' class='ax'/>"
        f"<text x='2' y='{pad}'>100</text><text x='2' y='{h - pad}'>0</text>"
        f"<polyline points='{line}' class='ln'/>{dots}</svg>"
    )


def _latency_svg(runs: list[dict[str, Any]]) -> str:
    bars = [
        (f"{r['orchestrator']}: {r['experiment']}", r["detection_latency_s"])
        for r in runs
        if r["detection_latency_s"] is not None
    ]
    if not bars:
        return "<p>No halts detected.</p>"
    top = max(v for _, v in bars) or 1.0
    w, row = 640, 22
    out = [f"<svg width='{w}' height='{row * len(bars) + 10}' role='img' aria-label='latency'>"]
    for i, (label, value) in enumerate(bars):
        width = (w - 330) * value / top
        out.append(
            f"<text x='0' y='{i * row + 15}'>{escape(label[:36])}</text>"
            f"<rect x='250' y='{i * row + 4}' width='{width:.1f}' height='14' class='bar'/>"
            f"<text x='{255 + width:.1f}' y='{i * row + 15}'>{value:.2f} s</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _sweep(sweep: dict[str, Any]) -> str:
    points = sweep.get("points", [])
    minimum = sweep.get("minimum_detected") or {}
    mins = "".join(
        f"<li>{escape(str(o))}: <b>{escape(str(v if v is not None else 'not detected'))}</b></li>"
        for o, v in minimum.items()
    )
    rows = "".join(
        f"<tr><td>{escape(str(p['orchestrator']))}</td><td>{escape(str(p['intensity']))}</td>"
        f"<td>{_badge(p['verdict'])}</td></tr>"
        for p in points
    )
    return (
        f"<p>experiment {escape(str(sweep.get('experiment')))}: minimum intensity detected"
        f"</p><ul>{mins}</ul>{_sweep_svg(points)}<table><tr><th>orchestrator</th>"
        f"<th>intensity</th><th>verdict</th></tr>{rows}</table>"
    )


def _sweep_svg(points: list[dict[str, Any]]) -> str:
    """Detected (1) or not (0) against log intensity, one row of dots per orchestrator."""
    import math

    if not points:
        return ""
    orchs = sorted({p["orchestrator"] for p in points})
    values = [p["intensity"] for p in points if p["intensity"] > 0] or [1.0]
    lo, hi = math.log10(min(values)), math.log10(max(values))
    w, row, left = 640, 30, 90
    out = [f"<svg width='{w}' height='{row * len(orchs) + 30}' role='img' aria-label='sweep'>"]
    for i, orch in enumerate(orchs):
        out.append(f"<text x='0' y='{i * row + 20}'>{escape(orch)}</text>")
        for p in (p for p in points if p["orchestrator"] == orch):
            frac = 0.5 if hi == lo else (math.log10(max(p["intensity"], 1e-12)) - lo) / (hi - lo)
            x = left + frac * (w - left - 20)
            color = COLORS.get(p["verdict"], "#57606a")
            out.append(
                f"<circle cx='{x:.1f}' cy='{i * row + 15}' r='7' style='fill:{color}'>"
                f"<title>{escape(str(p['intensity']))}: {escape(p['verdict'])}</title>"
                "</circle>"
            )
    out.append(
        f"<text x='{left}' y='{row * len(orchs) + 25}'>{10**lo:g}</text>"
        f"<text x='{w - 60}' y='{row * len(orchs) + 25}'>{10**hi:g}</text></svg>"
    )
    return "".join(out)


_CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#1f2328}table{border-collapse:
collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f6f8fa}.b{color:#fff;border-radius:8px;padding:1px 8px}
.cards{display:flex;gap:12px}.card{border:1px solid #d0d7de;border-radius:8px;padding:10px 16px}
.card .v{font-size:28px;font-weight:600}.card .n,.meta{color:#57606a;font-size:12px}
svg text{font-size:11px}.ln{fill:none;stroke:#0969da;stroke-width:2}.bar{fill:#0969da}
.ax{stroke:#8c959f}circle{fill:#0969da}code{background:#f6f8fa;padding:1px 4px}
.ev{margin:0;padding-left:16px;font-size:12px}.ev .crash{color:#953800;font-weight:600}"""


# --------------------------------------------------------------------------------------- write
def write_report(journal: dict[str, Any], reports_dir: str | Path = "reports") -> Path:
    """Write journal.json, junit.xml and report.html under ``reports/<timestamp>/`` and
    refresh ``reports/latest``; return the new directory."""
    root = Path(reports_dir)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = root / stamp
    n = 1
    while out.exists():
        out = root / f"{stamp}-{n}"
        n += 1
    out.mkdir(parents=True)
    (out / "journal.json").write_text(json.dumps(journal, indent=2, default=str))
    (out / "junit.xml").write_text(junit_xml(journal))
    (out / "report.html").write_text(html_report(journal))
    latest = root / "latest"
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.is_dir():
        shutil.rmtree(latest)
    latest.symlink_to(out.name)
    return out
