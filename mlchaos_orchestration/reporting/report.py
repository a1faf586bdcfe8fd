"""Reports of a resilience suite: ``journal.json`` (the record), ``junit.xml`` (for CI) and a
self-contained ``report.html`` (a summary first, then the fault x gate matrix, scorecard, evidence
per run and matplotlib plots of verdicts, score trend and latency, inlined as SVG).

Everything is derived from ledger runs; every data value rendered into HTML is escaped.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.text import plain_numbers
from mlchaos_orchestration.reporting import plots
from mlchaos_orchestration.reporting.plots import COLORS
from mlchaos_orchestration.reporting.scoring import (
    describe_fault,
    ignored_parameters,
    mutation_report,
    resilience_score,
)

FAILING = frozenset({"silent", "unalerted", "false_alarm", "gate_crashed"})
SKIPPED = frozenset({"not_reached", "not_applied"})


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
    clean = [
        e.data["details"].pop("clean_profile")
        for e in events
        if e.kind == "fault_applied"
        and isinstance(e.data.get("details"), dict)
        and isinstance(e.data["details"].get("clean_profile"), dict)
    ]
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
        "reason": plain_numbers(verdict.get("reason", ""))
        or ("no verdict: the run never finished" if not run.get("verdict") else ""),
        "halted_by": verdict.get("halted_by"),
        "halted_by_gate": verdict.get("halted_by_gate"),
        "alert_expected": verdict.get("alert_expected", True),
        "detection_latency_s": verdict.get("detection_latency_s"),
        "first_failure_latency_s": verdict.get("first_failure_latency_s"),
        "alert_latency_s": verdict.get("alert_latency_s"),
        "retries": verdict.get("retries", 0),
        "evidence": verdict.get("evidence") or {},
        "clean_profile": clean[0] if clean else None,
        "evidence_text": [plain_numbers(x) for x in evidence_lines(verdict.get("evidence") or {})],
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
        clients = f.get("clients") or {}
        if clients and clients.get("reached", "") not in str(f.get("why")):
            lines.append(
                f"clients reached: {clients['reached']}; not reached: {clients['not_reached']}"
            )
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
    """The journal of one suite: every run with the suite id, plus scores and history.

    ``meta`` defaults to what the suite run stored in the ledger (targets, worker exit codes
    and logs, run date, duration), so a re-rendered report shows the same details."""
    if meta is None:
        meta = ledger.suite_meta(suite_id)
    runs = sorted(ledger.list_runs(limit=10_000, suite_id=suite_id), key=lambda r: r["started_at"])
    records = [run_record(ledger, r) for r in runs]
    journal = {
        "title": title,
        "suite_id": suite_id,
        "generated_at": iso(dt.datetime.now().timestamp()),
        "meta": meta or {},
        "resilience_score": resilience_score(records),
        "mutation": mutation_report(records, _profiles(ledger, runs)),
        "history": score_history(ledger, exclude=suite_id),
        "runs": records,
    }
    if (meta or {}).get("duration_s") is not None:
        journal["duration_s"] = meta["duration_s"]  # type: ignore[index]
    return journal


def _profiles(ledger: Ledger, runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Clean-data profiles recorded by control runs (``data_profile`` events), by orchestrator
    and by ``orchestrator/pipeline`` (several targets of one orchestrator)."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run.get("control"):
            for event in ledger.events(run["id"]):
                if event.kind == "data_profile" and isinstance(event.data.get("profile"), dict):
                    out[str(run.get("orchestrator"))] = event.data["profile"]
                    out[f"{run.get('orchestrator')}/{run.get('pipeline')}"] = event.data["profile"]
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
    """A self-contained HTML page (no scripts, no external resources); every data value is
    escaped. A summary a manager can read comes first, the details after it."""
    runs = journal["runs"]
    score = journal["resilience_score"]
    mut = journal["mutation"]
    pipelines = pipeline_names(runs)
    named = ", ".join(pipelines) or "(no pipeline recorded)"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(journal['title'])}: {escape(named)}</title>"
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{escape(journal['title'])}: {escape(named)}</h1>",
        f"<p class='meta'>pipeline{'s' if len(pipelines) != 1 else ''} "
        f"<b>{escape(named)}</b> · orchestrators "
        f"{escape(', '.join(sorted({str(r['orchestrator']) for r in runs})) or '-')}"
        f"{_experiments_file(journal)} · suite {escape(str(journal['suite_id']))} · generated "
        f"{escape(str(journal['generated_at']))}</p>",
        _summary_html(journal),
        "<div class='cards'>",
        _card(
            "resilience score",
            "-" if score is None else f"{score:g}",
            "out of 100: caught = 1, unalerted = 0.5, silent = 0; halved on a false alarm",
        ),
        _card(
            "gate mutation score",
            "-" if mut["score"] is None else f"{mut['killed']}/{mut['mutants']}",
            "mutants killed by a gate detection / mutants (crashes and other halts are no kills)",
        ),
        _card("runs", str(len(runs)), "control + fault experiments"),
        "</div>",
        _figure(plots.verdicts_svg(runs), "No fault experiments ran."),
        "<h2>Fault × gate matrix</h2>",
        _matrix(runs),
        "<h2>Surviving mutants: checks the gate is missing</h2>",
        _survivors(mut),
        "<h2>Scorecard</h2>",
        _scorecard(runs),
        "<h2>Resilience score trend</h2>",
        _figure(plots.trend_svg(_trend_points(journal)), "No scores yet."),
        "<h2>Detection latency</h2>",
        _figure(plots.latency_svg(runs), "No halts detected."),
        "<h2>Evidence per run</h2>",
        _evidence_section(runs),
        _suite_details(journal.get("meta") or {}, journal.get("duration_s")),
    ]
    sweep = journal.get("sweep")
    if sweep:
        parts += ["<h2>Intensity sweep</h2>", _sweep(sweep)]
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _suite_details(meta: dict[str, Any], duration_s: Any) -> str:
    """What the suite run recorded beyond its runs: targets, run date, workers and logs."""
    items = [
        f"<li>target {escape(str(t.get('label')))}: {escape(str(t.get('describe')))}</li>"
        for t in meta.get("targets") or []
    ]
    if meta.get("ds"):
        items.append(f"<li>run date {escape(str(meta['ds']))}</li>")
    logs = meta.get("worker_logs") or {}
    for name, code in (meta.get("worker_exit_codes") or {}).items():
        log = f" · log <code>{escape(str(logs[name]))}</code>" if logs.get(name) else ""
        items.append(f"<li>worker {escape(str(name))} exited {escape(str(code))}{log}</li>")
    if meta.get("missing_verdicts"):
        items.append(f"<li>{int(meta['missing_verdicts'])} experiment(s) without a verdict</li>")
    if duration_s is not None:
        items.append(f"<li>took {escape(str(duration_s))} s</li>")
    if not items:
        return ""
    return f"<h2>Suite</h2><ul class='suite-details'>{''.join(items)}</ul>"


def pipeline_names(runs: list[dict[str, Any]]) -> list[str]:
    """The pipelines the suite ran against, in order of first appearance."""
    return list(dict.fromkeys(str(r["pipeline"]) for r in runs if r.get("pipeline")))


def _experiments_file(journal: dict[str, Any]) -> str:
    path = (journal.get("meta") or {}).get("experiments_file")
    return f" · experiments {escape(Path(str(path)).name)}" if path else ""


# ------------------------------------------------------------------------------------- summary
def summary_counts(runs: list[dict[str, Any]]) -> dict[str, int]:
    """Fault experiments (control runs excluded) by outcome: ``caught`` counts every halt
    (``unalerted`` ones too, also counted alone), ``not_reached`` includes ``not_applied``."""
    faults = [r for r in runs if not r.get("control")]
    count = Counter(str(r["verdict"]) for r in faults)
    return {
        "faults": len(faults),
        "caught": count["caught"] + count["unalerted"],
        "unalerted": count["unalerted"],
        "silent": count["silent"],
        "not_reached": count["not_reached"] + count["not_applied"],
        "gate_crashed": count["gate_crashed"],
        "error": count["error"],
    }


def summary_sentence(runs: list[dict[str, Any]]) -> str:
    """One sentence: how many fault experiments were caught, silent, not reached."""
    c = summary_counts(runs)
    if not c["faults"]:
        return "No fault experiments ran."
    caught = f"{c['caught']} caught"
    if c["unalerted"]:
        caught += f" ({c['unalerted']} of them without an alert)"
    parts = [caught, f"{c['silent']} silent (nobody noticed)", f"{c['not_reached']} not reached"]
    if c["gate_crashed"]:
        parts.append(f"{c['gate_crashed']} with the gate crashing")
    if c["error"]:
        parts.append(f"{c['error']} without a verdict (error)")
    n = c["faults"]
    return f"Of {n} fault experiment{'s' if n != 1 else ''}: " + ", ".join(parts) + "."


def worst_finding(journal: dict[str, Any]) -> str:
    """The worst finding of the suite in one sentence (a broken control run, then a silent
    fault, a crashed gate, a missing alert, an error, a fault that never reached the data)."""
    runs = journal["runs"]
    by = _by_experiment(runs)
    broken = [
        r for r in runs if r.get("control") and r["verdict"] in ("false_alarm", "gate_crashed")
    ]
    if broken:
        r = broken[0]
        return (
            f"The clean control run failed on {_orchs(by, r)} ({r['verdict']}: "
            f"{_short(r['reason'])}), so the gate halts good data and its catches prove little."
        )
    silent = [r for r in runs if not r.get("control") and r["verdict"] == "silent"]
    if silent:
        r = silent[0]
        fix = _fix_for(journal, r["experiment"])
        more = f" ({len(silent)} silent runs in all)" if len(silent) > 1 else ""
        consumer = f"consumer {r['consumer']}" if r.get("consumer") else "the consumer"
        return (
            f"Experiment {r['experiment']} ({_what(r)}) went unnoticed on "
            f"{_orchs(by, r, 'silent')}: {consumer} ran on the faulted data{more}"
            + (f"; the gate needs {fix}." if fix else ".")
        )
    for verdict, text in (
        ("gate_crashed", "the gate crashed without running its checks"),
        ("unalerted", "the run was halted but no alert was delivered"),
        ("error", "the chaos machinery failed and produced no verdict"),
        ("not_reached", "the fault never reached the data the pipeline read"),
        ("not_applied", "the fault was never applied"),
    ):
        hits = [r for r in runs if not r.get("control") and r["verdict"] == verdict]
        if verdict == "unalerted":
            hits = [r for r in hits if r.get("alert_expected") is not False]
        if hits:
            r = hits[0]
            return (
                f"Experiment {r['experiment']} ({_what(r)}) on {_orchs(by, r, verdict)}: "
                f"{text} ({_short(r['reason'])})."
            )
    if not any(not r.get("control") for r in runs):
        return "No fault experiments ran, so nothing was tested."
    return "Nothing went unnoticed: every fault that reached the pipeline was caught and alerted."


def _by_experiment(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        out.setdefault(r["experiment"], []).append(r)
    return out


def _orchs(by: dict[str, list[dict[str, Any]]], run: dict[str, Any], verdict: str = "") -> str:
    same = [
        str(r["orchestrator"])
        for r in by.get(run["experiment"], [run])
        if r["verdict"] == (verdict or run["verdict"])
    ]
    return " and ".join(sorted(set(same))) or str(run["orchestrator"])


def _what(run: dict[str, Any]) -> str:
    faults = run.get("faults") or []
    return ", ".join(describe_fault(f) for f in faults) or "no fault recorded"


def _fix_for(journal: dict[str, Any], experiment: str) -> str:
    for s in journal["mutation"]["survivors"]:
        if s["experiment"] == experiment and s.get("expectation"):
            return str(s["expectation"])
    return ""


def _short(text: Any, limit: int = 160) -> str:
    line = " ".join(plain_numbers(str(text)).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _summary_html(journal: dict[str, Any]) -> str:
    runs = journal["runs"]
    c = summary_counts(runs)
    score = journal["resilience_score"]
    history = [h["score"] for h in journal.get("history") or [] if h.get("score") is not None]
    trend = ""
    if score is not None and history:
        delta = score - history[-1]
        trend = f" ({'+' if delta >= 0 else ''}{delta:g} since the previous suite)"
    controls = [r for r in runs if r.get("control")]
    control = ""
    if controls:
        ok = all(r["verdict"] == "clean" for r in controls)
        control = (
            "The clean control run passed on every orchestrator."
            if ok
            else "The clean control run did NOT pass everywhere: see the scorecard."
        )
    tiles = "".join(
        f"<div class='tile {k}'><div class='v'>{c[k]}</div><div class='t'>{escape(t)}</div></div>"
        for k, t in (
            ("caught", "caught"),
            ("silent", "silent"),
            ("not_reached", "not reached"),
        )
    )
    return (
        "<section class='summary' aria-label='summary'><h2>Summary</h2>"
        f"<div class='tiles'>{tiles}<div class='tile score'><div class='v'>"
        f"{'-' if score is None else f'{score:g}'}</div><div class='t'>resilience score / 100"
        f"</div></div></div>"
        f"<p id='summary-counts'>{escape(summary_sentence(runs))} Resilience score: "
        f"<b>{'-' if score is None else f'{score:g}'}</b> out of 100{escape(trend)}. "
        f"{escape(control)}</p>"
        f"<p id='worst-finding'><b>Worst finding:</b> {escape(worst_finding(journal))}</p>"
        "</section>"
    )


# -------------------------------------------------------------------------------------- tables
def _card(title: str, value: str, note: str) -> str:
    return (
        f"<div class='card'><div class='t'>{escape(title)}</div>"
        f"<div class='v'>{escape(value)}</div><div class='n'>{escape(note)}</div></div>"
    )


def _badge(verdict: str) -> str:
    color = COLORS.get(verdict, "#57606a")
    return f"<span class='b' style='background:{color}'>{escape(verdict)}</span>"


def _figure(svg: str, empty: str) -> str:
    return f"<figure>{svg}</figure>" if svg else f"<p>{escape(empty)}</p>"


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
    return f"<table class='matrix'><tr><th>experiment</th>{head}</tr>{body}</table>"


_SCORECARD_COLS = (
    ("orchestrator", "7%"),
    ("experiment", "11%"),
    ("faults", "18%"),
    ("verdict", "10%"),
    ("expected", "7%"),
    ("detection (s)", "6%"),
    ("alert (s)", "5%"),
    ("restored exactly", "6%"),
    ("reason", "30%"),
)


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
            f"<td class='n'>{_num(r['detection_latency_s'])}</td>"
            f"<td class='n'>{_num(r['alert_latency_s'])}</td>"
            f"<td>{'yes' if r['restore_proof']['all_identical'] else 'NO'}</td>"
            f"<td>{escape(plain_numbers(r['reason']))}</td></tr>"
        )
    cols = "".join(f"<col style='width:{w}'>" for _, w in _SCORECARD_COLS)
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in _SCORECARD_COLS)
    return (
        f"<table class='scorecard'><colgroup>{cols}</colgroup><tr>{head}</tr>"
        f"{''.join(rows)}</table>"
    )


def _evidence_section(runs: list[dict[str, Any]]) -> str:
    """The evidence each verdict rests on, run by run."""
    items = "".join(
        f"<div class='evrun'><div class='evh'>{escape(str(r['orchestrator']))} / "
        f"{escape(str(r['experiment']))} {_badge(r['verdict'])}</div>{_evidence_html(r)}</div>"
        for r in runs
    )
    return f"<div class='evidence'>{items}</div>" if items else "<p>No runs.</p>"


def _evidence_html(run: dict[str, Any]) -> str:
    lines = list(run.get("evidence_text") or [])
    if run.get("verdict") == "unalerted" and run.get("alert_expected") is False:
        lines.append("no alert channel declared (alert.expected: false): not a failure")
    if not lines:
        return "<p class='none'>no evidence recorded</p>"
    items = "".join(
        f"<li class='{'crash' if 'CRASHED' in line else ''}'>{escape(plain_numbers(line))}</li>"
        for line in lines
    )
    return f"<ul class='ev'>{items}</ul>"


def _fault_text(fault: dict[str, Any]) -> str:
    """``name(param=value, ...)`` with parameters left at their defaults, and parameters the
    fault ignores (e.g. class removal's ``fraction``), omitted."""
    from mlchaos_orchestration.errors import MlchaosError
    from mlchaos_orchestration.faults import get_fault_class

    name = str(fault.get("fault"))
    try:
        fields = get_fault_class(name).model_fields
    except MlchaosError:
        fields = {}
    ignored = ignored_parameters(name)
    params = ", ".join(
        f"{k}={plain_numbers(str(v))}"
        for k, v in fault.items()
        if k != "fault"
        and k not in ignored
        and not (
            k in fields
            and not fields[k].is_required()
            and fields[k].get_default(call_default_factory=True) == v
        )
    )
    return f"{name}({params})"


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
    return f"<ul class='survivors'>{items}</ul>"


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def _trend_points(journal: dict[str, Any]) -> list[dict[str, Any]]:
    points = [h for h in journal["history"] if h["score"] is not None]
    if journal["resilience_score"] is not None:
        points = [*points, {"at": journal["generated_at"], "score": journal["resilience_score"]}]
    return points


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
    svg = plots.sweep_svg(
        points, str(sweep.get("experiment")), str(sweep.get("parameter") or "fraction")
    )
    return (
        f"<p>experiment {escape(str(sweep.get('experiment')))}: minimum intensity detected"
        f"</p><ul>{mins}</ul>{_figure(svg, 'No sweep points.')}<table class='narrow'><tr>"
        f"<th>orchestrator</th><th>intensity</th><th>verdict</th></tr>{rows}</table>"
        + _impact(sweep)
    )


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4f}"


def _spread(point: dict[str, Any], metric: str) -> str:
    """The point's mean metric, ± its spread over the fault seeds when there is one."""
    value, spread = point.get(metric), point.get("spread")
    return escape(str(value)) + ("" if spread is None else f" ± {spread}")


def _impact(sweep: dict[str, Any]) -> str:
    """The trained model's metric drop per intensity next to the gate's detection."""
    from mlchaos_orchestration.reporting.impact import detection_note

    impact = sweep.get("impact")
    if not impact:
        return ""
    minimum = sweep.get("minimum_detected") or {}
    metric = escape(str(impact["metric"]))
    rows = "".join(
        f"<tr><td class='n'>{p['intensity']:g}</td><td class='n'>{_spread(p, impact['metric'])}"
        "</td>"
        f"<td class='n'>{_signed(p.get('drop'))}</td>"
        f"<td>{escape(str(p.get('error') or ''))}</td></tr>"
        for p in impact["points"]
    )
    svg = plots.impact_svg(impact, minimum, str(sweep.get("experiment")))
    return (
        f"<h3>What the fault does to the model</h3><p>{escape(detection_note(impact, minimum))}."
        f" The example's train step gets {impact['rows'] - impact['holdout_rows']} faulted rows;"
        f" {metric}"
        f" on {impact['holdout_rows']} clean holdout rows (mean ± spread over"
        f" {impact.get('repeats', 1)} fault seeds); clean baseline {impact['baseline']}."
        f"</p>{_figure(svg, 'No impact points.')}<table class='narrow'><tr><th>intensity</th>"
        f"<th>{metric}</th><th>{metric} drop</th><th>training</th></tr>{rows}</table>"
    )


_CSS = """*{box-sizing:border-box}body{font:14px system-ui,sans-serif;margin:0;color:#1f2328;
background:#fff}main{max-width:1240px;margin:0 auto;padding:20px 24px}h1{font-size:24px;
margin:0 0 4px;overflow-wrap:anywhere}h2{font-size:18px;margin:28px 0 8px}
table{border-collapse:collapse;margin:8px 0;width:100%;table-layout:fixed}
table.narrow{width:auto;table-layout:auto}td,th{border:1px solid #d0d7de;padding:4px 6px;
text-align:left;vertical-align:top;overflow-wrap:anywhere;word-break:break-word}
th{background:#f6f8fa;font-size:12px}td.n{text-align:right;font-variant-numeric:tabular-nums}
.scorecard td{font-size:12px}.b{color:#fff;border-radius:8px;padding:1px 7px;
white-space:nowrap;font-size:12px;display:inline-block;max-width:100%;overflow:hidden;
text-overflow:ellipsis;vertical-align:middle}
.cards,.tiles{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #d0d7de;
border-radius:8px;padding:10px 16px;flex:1 1 220px}.card .v{font-size:26px;font-weight:600}
.card .n,.meta{color:#57606a;font-size:12px}.meta{overflow-wrap:anywhere}
.summary{border:2px solid #0969da;border-radius:10px;padding:8px 18px 10px;margin:12px 0 16px;
background:#f6f8fa}.summary h2{margin:6px 0}.summary p{font-size:15px;line-height:1.45;
overflow-wrap:anywhere}.tile{border-radius:8px;padding:6px 16px;color:#fff;min-width:130px}
.tile .v{font-size:28px;font-weight:700}.tile .t{font-size:12px}.tile.caught{background:#1a7f37}
.tile.silent{background:#cf222e}.tile.not_reached{background:#6e7781}
.tile.score{background:#0969da}figure{margin:8px 0}svg.plot{max-width:100%;height:auto;
display:block}code{background:#eaeef2;padding:1px 4px;overflow-wrap:anywhere}
.survivors li{margin:3px 0;overflow-wrap:anywhere}.evidence{display:grid;
grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:8px}.evrun{border:1px solid
#d0d7de;border-radius:6px;padding:6px 10px;min-width:0}.evh{font-weight:600;margin-bottom:4px;
overflow-wrap:anywhere}.ev{margin:0;padding-left:16px;font-size:12px;overflow-wrap:anywhere}
.ev .crash{color:#953800;font-weight:600}.none{color:#57606a;font-size:12px;margin:0}"""


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
