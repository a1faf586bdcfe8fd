"""The blameless post-mortem of a game day, generated from the data: summary, a timeline merged
from the ledger events and the probe samples, impact, what held and what did not, action items,
and plots (p99 with the SLO line, request rate, error and fallback ratios, fault windows shaded).

Self-contained HTML (inline SVG, no scripts) plus the same facts as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from pathlib import Path
from typing import Any

from mlchaos_orchestration.gameday.runner import GameDayResult, Outcome

COLORS = {"held": "#1a7f37", "degraded_gracefully": "#bf8700", "breached": "#cf222e",
          "aborted": "#57606a"}  # fmt: skip


def _clock(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%H:%M:%S")


def _fmt(value: Any, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "no data"
    if isinstance(value, float):
        return f"{value:.{digits}g}{unit}"
    return f"{value}{unit}"


def timeline(o: Outcome, slo_ms: float) -> list[tuple[float, str]]:
    """Ordered (time, sentence) pairs: actions, first breach, kill switch, restore, recovery."""
    items: list[tuple[float, str]] = []
    for ev in o.timeline:
        what = ev["what"]
        if what == "action_started":
            extra = ", ".join(
                f"{k}={v}" for k, v in ev.items() if k not in ("t", "what", "action", "pid")
            )
            items.append((ev["t"], f"{ev['action']} started ({extra})"))
        elif what == "action_stopped":
            items.append((ev["t"], f"{ev['action']} stopped: {ev.get('reason')}"))
        elif what == "kill_switch":
            items.append((ev["t"], f"kill switch fired: {ev['probe']} = {_fmt(ev.get('value'))}"))
        elif what in ("rollback_started", "rollback_stopped"):
            items.append((ev["t"], f"{ev['action']} {what.split('_')[1]}"))
        elif what == "aborted":
            items.append((ev["t"], "aborted by mlchaos abort"))
        elif what == "steady_state_check":
            items.append((ev["t"], f"steady-state check ({ev['phase']})"))
    judged = [s for s in o.samples if s["phase"] != "warmup"]
    bad = [s for s in judged if s["ok"] is False]
    if bad:
        first = bad[0]
        items.append((first["t"], f"first breach: {first['probe']} = {_fmt(first['value'])}"))
        by_t: dict[float, list[dict[str, Any]]] = {}
        for s in judged:
            if s["t"] > bad[-1]["t"]:
                by_t.setdefault(s["t"], []).append(s)
        back = next((t for t, ss in sorted(by_t.items()) if any(s["ok"] is True for s in ss)), None)
        if back is not None:
            items.append((back, "back to steady state"))
        else:
            items.append((judged[-1]["t"], "NOT back to steady state by the end of the check"))
    return sorted(items, key=lambda x: x[0])


def impact(o: Outcome, slo_ms: float) -> dict[str, Any]:
    """Requests, errors and fallbacks under load; SLO budget burned (share of samples under load
    with p99 over the SLO)."""
    secs = [x for load in o.load for x in load["samples"]]
    requests = sum(x["requests"] for x in secs)
    failures = sum(x["failures"] for x in secs)
    p99s = [s for s in o.samples if s["phase"] != "warmup" and s["probe"] == "p99_latency"]
    over = [s for s in p99s if s["value"] is not None and s["value"] > slo_ms]
    return {
        "requests": requests,
        "errors": failures,
        "error_ratio": round(failures / requests, 4) if requests else None,
        "fallback_ratio": o.fallback_ratio,
        "slo_budget_burned": round(len(over) / len(p99s), 3) if p99s else None,
    }


def action_items(o: Outcome, slo_ms: float) -> list[str]:
    """Derived from the data, never a template list: each item cites its figure."""
    items = []
    p99 = o.p99_ms
    network = [w for w in o.windows if w["action"].startswith("network")]
    if not o.mitigation and o.verdict == "breached" and network and p99 is not None:
        items.append(
            f"feature reads have no circuit breaker or fallback: p99 rose to {p99:.0f} ms "
            f"(SLO {slo_ms:.0f} ms) while the feature store was slow — keep the mitigation on"
        )
    if o.mitigation and o.verdict == "breached" and p99 is not None and p99 > slo_ms:
        items.append(
            f"p99 reached {p99:.0f} ms with the mitigation on: check capacity at "
            f"{_fmt(o.target_rps)} req/s and the breaker's read timeout"
        )
    if o.fallback_ratio:
        items.append(
            f"{o.fallback_ratio:.0%} of predictions used fallback features at worst: alert on "
            "the fallback ratio and bound how stale cached features may be"
        )
    if o.kill_switch.get("fired"):
        items.append(
            f"the kill switch stopped the experiment {o.kill_switch['delay_s']:.2f} s after "
            f"{o.kill_switch['consecutive']} breaches in a row: keep it armed in production"
        )
    if o.pipeline is not None and not o.pipeline.get("within_sla"):
        items.append(
            f"the batch pipeline did not finish within its SLA ({o.pipeline.get('reason')}): "
            "add retries with backoff on the feature database connector, or alert on the SLA"
        )
    if o.error_ratio:
        items.append(
            f"errors reached {o.error_ratio:.1%} of requests: find which dependency failed"
        )
    return items or ["nothing to fix: every SLO probe held"]


def _plot(o: Outcome, slo_ms: float) -> str:
    """p99 with the SLO line, request rate (served vs asked), error and fallback shares, one
    panel each, fault windows shaded."""
    from mlchaos_orchestration.reporting import plots

    # the method began with its first action (the fault windows are relative to it), which is
    # before the first sample judged as "method" (that one waits for a fault to be active)
    starts = [e["t"] for e in o.timeline if e.get("what") == "action_started"]
    method = [s for s in o.samples if s["phase"] == "method"]
    t0 = min(starts) if starts else (method or o.samples or [{"t": 0.0}])[0]["t"]

    def series(probe: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
        pts = [(s["t"] - t0, s["value"]) for s in o.samples if s["probe"] == probe]
        return [t for t, v in pts if v is not None], [v * scale for _, v in pts if v is not None]

    def build() -> str:
        fig = plots.new_figure(5.6)
        latency, rate, shares = fig.subplots(3, 1, sharex=True)
        latency.plot(*series("p99_latency"), color="#0969da", label="p99 latency")
        latency.axhline(slo_ms, color="#cf222e", linestyle="--", label=f"SLO {slo_ms:g} ms")
        plots.decorate(latency, f"{o.name}: p99 latency", "", "p99 latency (ms)")
        rate.plot(*series("request_rate"), color="#57606a", label="served")
        if o.target_rps:
            rate.axhline(o.target_rps, color="#8c959f", linestyle=":", label="asked")
        plots.decorate(rate, "request rate", "", "requests / s")
        shares.plot(*series("error_ratio", 100), color="#cf222e", label="errors")
        shares.plot(*series("fallback_ratio", 100), color="#bf8700", label="fallbacks")
        plots.decorate(
            shares, "errors and fallbacks", "seconds since the method began", "% of requests"
        )
        for ax in (latency, rate, shares):
            for n, w in enumerate(o.windows):
                label = "fault window" if ax is latency and n == 0 else None
                ax.axvspan(
                    w["start"], w["end"], color="#ffd8b5", alpha=0.5, linewidth=0, label=label
                )
        for ax in (latency, rate, shares):
            plots.legend_beside(ax)
        return plots.render(fig, f"gd-{o.name}", f"{o.name}: p99 latency, rate, errors, fallbacks")

    import matplotlib

    with matplotlib.rc_context(plots.STYLE):
        return build()


def render_html(result: GameDayResult) -> str:
    """The post-mortem page."""
    slo = result.slo_ms
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Game day post-mortem</title><style>",
        "body{font:14px/1.45 system-ui,sans-serif;max-width:1200px;margin:24px auto;padding:0 16px;"
        "color:#1f2328}table{border-collapse:collapse;width:100%}td,th{border:1px solid #d0d7de;"
        "padding:4px 8px;text-align:left;vertical-align:top}.badge{color:#fff;padding:1px 8px;"
        "border-radius:10px}svg.plot{max-width:100%;height:auto}h2{margin-top:32px}",
        "</style></head><body>",
        "<h1>Game day post-mortem (blameless)</h1>",
        f"<p>Measured peak of the prediction API on this machine: <b>{result.peak_rps:g} req/s</b> "
        f"(highest rate served with p99 under {slo:g} ms, no errors, under 1% fallbacks). "
        "Probes read from "
        f"<b>{escape(result.source)}</b>. Started {escape(_clock(result.started_at))} UTC, "
        f"{result.duration_s:g} s in all.</p>",
        "<h2>Summary</h2><table><tr><th>experiment</th><th>mitigation</th><th>verdict</th>"
        "<th>worst p99</th><th>load</th><th>why</th></tr>",
    ]
    for o in result.outcomes:
        color = COLORS.get(o.verdict, "#57606a")
        parts.append(
            f"<tr><td>{escape(o.name)}</td><td>{'on' if o.mitigation else 'off'}</td>"
            f"<td><span class='badge' style='background:{color}'>{escape(o.verdict)}</span></td>"
            f"<td>{_fmt(o.p99_ms, ' ms')}</td><td>{_fmt(o.rps)} of {_fmt(o.target_rps)} req/s</td>"
            f"<td>{escape(o.reason)}</td></tr>"
        )
    parts.append("</table>")
    for o in result.outcomes:
        imp = impact(o, slo)
        parts.append(f"<h2>{escape(o.name)}</h2>")
        parts.append(_plot(o, slo))
        parts.append("<h3>Timeline</h3><table><tr><th>UTC</th><th>what happened</th></tr>")
        parts += [
            f"<tr><td>{_clock(t)}</td><td>{escape(text)}</td></tr>" for t, text in timeline(o, slo)
        ]
        parts.append("</table><h3>Impact</h3><ul>")
        parts.append(f"<li>requests under load: {imp['requests']}, errors: {imp['errors']}</li>")
        share = imp["fallback_ratio"]
        parts.append(
            f"<li>worst fallback share: {'none' if not share else f'{share:.0%} of requests'}</li>"
        )
        parts.append(
            f"<li>SLO budget burned: {_fmt(imp['slo_budget_burned'])} of the samples under load "
            "had p99 over the SLO</li>"
        )
        if o.pipeline is not None:
            parts.append(
                f"<li>batch pipeline: {escape(str(o.pipeline.get('pipeline_verdict')))}, "
                f"finished: {o.pipeline.get('completed')}, {o.pipeline.get('duration_s')} s "
                f"(within SLA: {o.pipeline.get('within_sla')})</li>"
            )
        parts.append("</ul><h3>What held, what did not</h3><ul>")
        parts += [f"<li>{escape(line)}</li>" for line in held_lines(o)]
        parts.append("</ul><h3>Action items</h3><ol>")
        parts += [f"<li>{escape(a)}</li>" for a in action_items(o, slo)]
        parts.append("</ol>")
    parts += drift_section(result.drift)
    parts.append("</body></html>")
    return "\n".join(parts)


DRIFT_COLORS = {"caught": "#1a7f37", "unalerted": "#bf8700", "silent": "#cf222e",
                "false_alarm": "#cf222e", "error": "#57606a"}  # fmt: skip


def drift_section(drifts: list[Any]) -> list[str]:
    """HTML of the drift-monitor experiments: verdict, detection latency (requests, event-time
    hours, wall seconds) from drift start to the monitor's first alert, columns, channel."""
    if not drifts:
        return []
    parts = [
        "<h2>Drift monitor</h2><p>Traffic replayed through the prediction API (feedback labels "
        "straight to the monitor) with a controlled drift from its start; detection latency is "
        "from the first drifted request to the monitor's first alert.</p>",
        "<table><tr><th>experiment</th><th>fault</th><th>verdict</th><th>expected</th>"
        "<th>drift start</th><th>first alert</th><th>detection latency</th><th>columns</th>"
        "<th>alert channel</th></tr>",
    ]
    for d in drifts:
        color = DRIFT_COLORS.get(d.verdict, "#57606a")
        one = d.unit.rstrip("s")
        start = f"{one} {d.drift_start_request} ({d.drift_start_time})"
        first = (
            f"{one} {d.first_alert_request} ({d.first_alert_time})"
            if d.first_alert_request is not None
            else "none"
        )
        latency = "not detected"
        if d.latency_requests is not None:
            latency = f"{d.latency_requests} {d.unit}, {d.latency_event_h} h event time"
            latency += f", {d.latency_wall_s:.3g} s wall" if d.latency_wall_s is not None else ""
        params = ", ".join(
            f"{k}={v}"
            for k, v in d.params.items()
            if k not in ("fault", "time_column") and v not in (None, 1.0)
        )
        parts.append(
            f"<tr><td>{escape(d.name)}</td><td>{escape(d.fault)} ({escape(params)})</td>"
            f"<td><span class='badge' style='background:{color}'>{escape(d.verdict)}</span>"
            f"</td><td>{escape(str(d.expect or '-'))}{'' if d.met is not False else ' (missed)'}"
            f"</td><td>{escape(start)}</td><td>{escape(first)}</td><td>{escape(latency)}</td>"
            f"<td>{escape(', '.join(d.drifted_columns) or '-')}</td>"
            f"<td>{escape(d.channel)}</td></tr>"
        )
    parts.append("</table><ul>")
    parts += [f"<li>{escape(d.name)}: {escape(d.reason)}</li>" for d in drifts]
    parts.append("</ul>")
    return parts


def held_lines(o: Outcome) -> list[str]:
    """Per probe: its worst reading during the method against its tolerance."""
    out = []
    names = sorted({s["probe"] for s in o.samples})
    for name in names:
        vals = [s for s in o.samples if s["probe"] == name and s["phase"] != "warmup"]
        bad = [s for s in vals if s["ok"] is False]
        readings = [s["value"] for s in vals if s["value"] is not None]
        worst = max(readings) if readings else None
        state = f"out of tolerance in {len(bad)} of {len(vals)} samples" if bad else "held"
        out.append(f"{name}: {state} (worst {_fmt(worst)})")
    return out


def write_postmortem(result: GameDayResult, out_dir: Path) -> Path:
    """Write ``postmortem.html`` and ``gameday.json`` under ``out_dir``; return the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gameday.json").write_text(json.dumps(result.as_json(), indent=2, default=str))
    html = out_dir / "postmortem.html"
    html.write_text(render_html(result))
    return html


def last_line(result: GameDayResult) -> str:
    """``gameday: a/b/c p99=<ms>/<ms>/<ms> ms at <rps> rps (150% of peak <rps>); kill switch …``"""
    if not result.outcomes and result.drift:  # a file of drift experiments only
        return "gameday: drift " + "/".join(d.verdict for d in result.drift)
    verdicts = "/".join(o.verdict for o in result.outcomes)
    p99s = "/".join(
        _fmt(o.p99_ms if o.p99_ms is None else round(o.p99_ms)) for o in result.outcomes
    )
    rates = [o.target_rps for o in result.outcomes if o.target_rps]
    rate = _fmt(rates[0]) if rates else "no load"
    ratio = f"{rates[0] / result.peak_rps:.0%}" if rates and result.peak_rps else "?"
    fired = any(o.kill_switch.get("fired") for o in result.outcomes)
    return (
        f"gameday: {verdicts} p99={p99s} ms at {rate} rps ({ratio} of peak "
        f"{result.peak_rps:g}); kill switch {'fired' if fired else 'not fired'}"
    )
