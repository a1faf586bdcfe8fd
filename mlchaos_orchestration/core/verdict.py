"""Verdicts, computed only from ledger events, so Airflow, Dagster and plain runs agree.

Every verdict rests on recorded *evidence* (returned in ``verdict["evidence"]``); without
evidence there is no claim. A *halt* is a FINAL failure only (``gate_failed``, ``gate_crashed``,
``task_failed`` with ``final`` true or absent); ``task_retry`` never halts.

- ``caught``       the gate ran its checks and found violations (or an upstream task failed
                   finally) after the fault, the consumer never started, an alert was delivered
                   in time;
- ``unalerted``    halted like ``caught``, but no alert was delivered in time (flagged
                   ``alert_expected: false`` when the experiment declares no alert channel);
- ``silent``       the consumer started AND evidence shows the fault reached it (the consumer or
                   the gate read the faulted content, an in-memory fault at the gate's/consumer's
                   load, intercepted calls failed, ...);
- ``gate_crashed`` the gate failed finally without running its checks (bad suite, misspelled
                   expectation, import error): never a detection, in control runs too;
- ``not_reached``  the fault was applied but never reached what the pipeline read (0 rows
                   changed, 0 calls intercepted, every read saw rewritten content, no task read
                   the target); ``reason`` says why in one sentence;
- ``false_alarm``  the clean control run halted (a final failure that is not a gate crash);
- ``clean``        the clean control run passed (retries, if any, are in the evidence);
- ``not_applied``  no fault was applied;
- ``error``        the chaos machinery failed (apply error, restore failure, no outcome observed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlchaos_orchestration.core.ledger import Event

HALT_KINDS = ("gate_failed", "gate_crashed", "task_failed")
VERDICTS = (
    "caught",
    "unalerted",
    "silent",
    "false_alarm",
    "clean",
    "not_applied",
    "not_reached",
    "gate_crashed",
    "error",
)
BAD_VERDICTS = frozenset({"silent", "unalerted", "false_alarm", "error", "gate_crashed"})
#: what ``--fail-on default`` / the VerdictOperator fail on (``not_reached`` is reported only)
DEFAULT_FAIL_ON = ("silent", "unalerted", "false_alarm", "error", "gate_crashed")
HOOK_FAULTS = frozenset({"connector_failure"})

_CHECK_WORDS = ("Check", "Validation", "Expectation")
_FAIL_WORDS = ("Fail", "Error")
#: words that mark an exception as a broken gate (configuration, I/O), never a finding
_CRASH_WORDS = ("Invalid", "Config", "Import", "NotFound", "Unknown", "Syntax", "Connection")


def is_check_failure(*exception_class_names: str) -> bool:
    """True if any exception class (names of the exception chain, bare or dotted) means a gate
    that ran its checks and found violations, as opposed to a gate that crashed.

    Detections: ``GateFailed`` (our GX gate), ``AssertionError`` (a hand-written check), and any
    class whose name contains "Check", "Validation" or "Expectation" together with "Fail" or
    "Error" (e.g. ``DataQualityCheckFailed``, ``ExpectationFailedError``). Not detections:
    names that also say "Invalid", "Config", "Import", "NotFound", "Unknown", "Syntax" or
    "Connection" (``InvalidExpectationConfigurationError`` is a broken suite), and a bare
    ``ValidationError`` (pydantic / marshmallow / jsonschema: a configuration error).
    """
    for full in exception_class_names:
        name = str(full or "").rsplit(".", 1)[-1]
        if not name:
            continue
        if name in ("GateFailed", "AssertionError"):
            return True
        if name == "ValidationError" or any(w in name for w in _CRASH_WORDS):
            continue
        if any(w in name for w in _CHECK_WORDS) and any(w in name for w in _FAIL_WORDS):
            return True
    return False


def parse_fail_on(value: str | Iterable[str]) -> set[str]:
    """``"silent,unalerted!"`` -> ``{"silent", "unalerted!"}``; ``default`` expands to
    :data:`DEFAULT_FAIL_ON`. Unknown verdict names raise ``ValueError`` (one line)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out: set[str] = set()
    for raw in items:
        item = str(raw).strip()
        if not item:
            continue
        if item == "default":
            out |= set(DEFAULT_FAIL_ON)
            continue
        if item.rstrip("!") not in VERDICTS:
            from mlchaos_orchestration.errors import did_you_mean

            hint = did_you_mean(item.rstrip("!"), VERDICTS)
            suffix = f" (did you mean {hint!r}?)" if hint else ""
            raise ValueError(f"--fail-on: unknown verdict {item!r}{suffix}")
        out.add(item)
    return out


def fails(verdict: dict[str, Any] | None, fail_on: Iterable[str]) -> bool:
    """Whether a verdict dict fails a ``fail_on`` set. A missing verdict fails when ``error`` is
    asked for. ``unalerted`` of an experiment that declared ``alert: {expected: false}`` fails
    only when ``unalerted!`` is asked explicitly."""
    wanted = set(fail_on)
    kind = (verdict or {}).get("verdict") or "error"
    if kind == "unalerted" and (verdict or {}).get("alert_expected") is False:
        return "unalerted!" in wanted
    return kind in wanted or f"{kind}!" in wanted


# ------------------------------------------------------------------------------------- verdict
def compute_verdict(
    events: Iterable[Event],
    *,
    control: bool = False,
    alert_deadline_s: float = 300.0,
    alert_expected: bool = True,
) -> dict[str, Any]:
    """The verdict of one run from its events, with latencies and the evidence it rests on."""
    evs = sorted(events, key=lambda e: e.ts)
    first = _first_of(evs, ("run_started", "fault_applied")) or (evs[0] if evs else None)
    applied_events = [e for e in evs if e.kind == "fault_applied"]
    applied = applied_events[0] if applied_events else None
    start = applied if applied is not None else first
    t0 = start.ts if start is not None else 0.0
    after = [e for e in evs if e.ts >= t0]
    halts = [e for e in after if _is_final_failure(e)]
    halt = halts[0] if halts else None
    failures = [e for e in after if e.kind in HALT_KINDS or e.kind == "task_retry"]
    consumer = _first_of(after, ("consumer_started",))
    alert = _first_of(
        [e for e in after if e.data.get("delivered", True) is not False], ("alert_sent",)
    )
    retries = [_retry(e) for e in evs if _is_retry(e)]
    faults = [_fault_evidence(e, evs) for e in applied_events]
    evidence = _evidence(evs, faults, halt, retries, consumer)
    detected = halt is not None and _is_detection(halt)
    out: dict[str, Any] = {
        "verdict": None,
        "reason": "",
        "control": control,
        "halted_by": (halt.source or halt.kind) if halt else None,
        "halted_by_gate": detected and halt is not None and halt.kind == "gate_failed",
        "halt_kind": halt.kind if halt else None,
        "consumer_started": consumer is not None,
        "alert_delivered": alert is not None,
        "alert_expected": alert_expected,
        "detection_latency_s": _latency(start, halt),
        "first_failure_latency_s": _latency(start, failures[0] if failures else None),
        "alert_latency_s": _latency(start, alert),
        "retries": len(retries),
        "evidence": evidence,
    }
    errors = [e for e in evs if e.kind == "error"]
    if errors or _restore_failed(evs):
        msg = errors[0].data.get("message", "error") if errors else "restore failed"
        return {**out, "verdict": "error", "reason": str(msg)}
    retried = f" ({_retry_text(retries)})" if retries else ""
    if halt is not None and halt.kind != "task_failed" and not detected:
        what = halt.data.get("error_type") or "error"
        msg = _short(halt.data.get("message", ""))
        gate = f"gate {halt.source}" if halt.source else "the gate"
        return {
            **out,
            "verdict": "gate_crashed",
            "reason": f"{gate} crashed without running its checks ({what}: {msg})",
        }
    if control:
        if halt is not None:
            return {
                **out,
                "verdict": "false_alarm",
                "reason": f"clean control run halted by {out['halted_by']}{retried}",
            }
        if consumer is not None or _first_of(evs, ("gate_passed",)):
            return {**out, "verdict": "clean", "reason": f"clean run passed the gate{retried}"}
        return {**out, "verdict": "error", "reason": "control run: no gate or consumer outcome"}
    if applied is None:
        return {**out, "verdict": "not_applied", "reason": "no fault was applied"}
    reach = _reach(faults)
    consumer_first = consumer is not None and (halt is None or consumer.ts <= halt.ts)
    if consumer_first:
        assert consumer is not None
        hit = _reached_consumer(faults, consumer.source or None)
        if hit:
            return {
                **out,
                "verdict": "silent",
                "reason": f"consumer {consumer.source or ''} started; {hit}".replace(
                    "consumer  ", "consumer "
                ),
            }
        return {**out, "verdict": "not_reached", "reason": _not_reached_reason(faults, consumer)}
    if reach is False:
        return {**out, "verdict": "not_reached", "reason": _not_reached_reason(faults, halt)}
    if halt is None:
        return {**out, "verdict": "error", "reason": "neither a halt nor a consumer start seen"}
    by = f"{'gate ' if out['halted_by_gate'] else ''}{out['halted_by']}"
    if alert is not None and alert.ts - halt.ts <= alert_deadline_s:
        channel = alert.data.get("channel") or alert.source or "alert"
        return {**out, "verdict": "caught", "reason": f"halted by {by}, alerted via {channel}"}
    if not alert_expected:
        why = "no alert channel declared (alert.expected: false)"
    else:
        why = "no alert delivered" if alert is None else "alert later than the deadline"
    return {**out, "verdict": "unalerted", "reason": f"halted by {by}, {why}"}


# ------------------------------------------------------------------------------------ failures
def _is_final_failure(e: Event) -> bool:
    if e.kind in ("gate_failed", "gate_crashed"):
        return e.data.get("final", True) is not False
    return e.kind == "task_failed" and e.data.get("final", True) is not False


def _is_retry(e: Event) -> bool:
    return e.kind == "task_retry" or (e.kind in HALT_KINDS and e.data.get("final") is False)


def _is_detection(e: Event) -> bool:
    """A final failure that detected something: a gate that ran its checks, or a task failure
    (an upstream task failing loudly). ``gate_failed`` without ``checks_run`` (old ledgers)
    counts as a detection."""
    if e.kind == "gate_failed":
        return e.data.get("checks_run", True) is not False
    return e.kind == "task_failed"


def _retry(e: Event) -> dict[str, Any]:
    return {
        "task": e.source,
        "attempt": e.data.get("attempt"),
        "message": _short(e.data.get("message", "")),
        "ts": e.ts,
    }


def _retry_text(retries: list[dict[str, Any]]) -> str:
    parts = [f"{r['task']} attempt {r['attempt']}" for r in retries[:3]]
    more = f" and {len(retries) - 3} more" if len(retries) > 3 else ""
    return f"{len(retries)} retr{'y' if len(retries) == 1 else 'ies'}: " + ", ".join(parts) + more


# ------------------------------------------------------------------------------------ evidence
def _rows_changed(e: Event) -> int | None:
    value = e.data.get("rows_changed")
    if value is None:
        value = (e.data.get("details") or {}).get("rows_changed")
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _clients(targets: list[Any]) -> dict[str, str]:
    """Which clients an intercepted (hook) fault on ``targets`` reaches, and which not."""
    from mlchaos_orchestration.interceptors.registry import CLIENTS

    s3 = any(str(t).startswith("s3://") for t in targets)
    reached, missed = CLIENTS["s3_failure" if s3 else "sql_failure"]
    return {"reached": reached, "not_reached": missed}


def _fault_evidence(applied: Event, evs: list[Event]) -> dict[str, Any]:
    """What is known about one applied fault and whether it reached the pipeline.

    ``reached``: True (evidence it did), False (evidence it did not), None (no evidence).
    """
    data = applied.data
    lease_id = data.get("lease_id")
    name = str(data.get("fault") or applied.source or "fault")
    rows = _rows_changed(applied)
    site = data.get("site")
    hook = bool(data.get("hook")) or (
        name in HOOK_FAULTS and not data.get("fingerprint") and not data.get("backed_up")
    )
    info: dict[str, Any] = {
        "fault": name,
        "lease_id": lease_id,
        "applied_at": applied.ts,
        "targets": data.get("targets") or [],
        "fingerprint": data.get("fingerprint") or {},
        "rows_changed": rows,
        "site": site,
        "hook": hook,
        "calls": None,
        "slowed": float((data.get("params") or {}).get("latency_ms") or 0) > 0,
        "reads": [],
        "reached": None,
        "why": "",
        "clients": _clients(data.get("targets") or []) if hook else None,
    }
    if lease_id is None and site is None:
        # in-memory fault of an older ledger: recorded by the step that loaded the value
        site = {"step": applied.source, "input": data.get("input")}
        info["site"] = site
    if hook and lease_id is not None:
        stats = [
            e for e in evs if e.kind == "interceptor_stats" and e.data.get("lease_id") == lease_id
        ]
        if stats:
            info["calls"] = {
                "intercepted": sum(int(e.data.get("intercepted") or 0) for e in stats),
                "failed": sum(int(e.data.get("failed") or 0) for e in stats),
                "processes": len(stats),
            }
    # reads of a stored fault carry its lease; of a fault applied as a value was pulled (XCom),
    # the pull's id
    link = ("lease_id", lease_id) if lease_id is not None else ("pull_id", data.get("pull_id"))
    if link[1] is not None:
        info["reads"] = [
            {
                "task": e.data.get("task") or e.source,
                "role": e.data.get("role"),
                "target": e.data.get("target"),
                "matches": e.data.get("matches"),
                "upstream_of": list(e.data.get("upstream_of") or []),
                "at_s": round(e.ts - applied.ts, 3),
            }
            for e in evs
            if e.kind == "target_read" and e.data.get(link[0]) == link[1]
        ]
    what = ", ".join(map(str, info["targets"])) or (
        f"input {site.get('input')} of {site.get('step')}" if site else name
    )
    if rows == 0:
        info["reached"], info["why"] = False, f"{name} changed 0 rows of {what}"
    elif info["calls"] is not None:
        calls = info["calls"]
        if calls["intercepted"] == 0:
            info["reached"] = False
            info["why"] = f"{name} intercepted 0 calls to {what}: no task used it"
            if info["clients"]:
                info["why"] += (
                    f" through a client it reaches ({info['clients']['reached']}); out of its "
                    f"reach: {info['clients']['not_reached']}"
                )
        elif calls["failed"] == 0 and not info["slowed"]:
            info["reached"] = False
            info["why"] = (
                f"{name} intercepted {calls['intercepted']} calls to {what} and failed none"
            )
        else:
            info["reached"] = True
            info["why"] = (
                f"{name} intercepted {calls['intercepted']} calls to {what}, "
                f"{calls['failed']} failed"
            )
    elif site is not None and lease_id is None:
        info["reached"] = True
        changed = "" if rows is None else f"{rows} rows changed, "
        info["why"] = f"{name} changed {what} as {site.get('step')} loaded it ({changed}in memory)"
    elif info["reads"]:
        matched = [r for r in info["reads"] if r["matches"] is True]
        if matched:
            r = matched[0]
            info["reached"] = True
            info["why"] = f"{r['role']} {r['task']} read the faulted {r['target']}"
        elif all(r["matches"] is False for r in info["reads"]):
            r = info["reads"][0]
            info["reached"] = False
            info["why"] = (
                f"{r['target']} was rewritten after the fault (seen {r['at_s']:.1f} s after it "
                f"when {r['task']} started); the {r['role']} read the rewritten content"
            )
    elif lease_id is not None and not hook:
        info["why"] = f"no task read {what} while the fault was in place"
    return info


def _reach(faults: list[dict[str, Any]]) -> bool | None:
    """True if any fault reached the pipeline, False if every one provably did not."""
    if any(f["reached"] is True for f in faults):
        return True
    if faults and all(f["reached"] is False for f in faults):
        return False
    return None


def _reached_consumer(faults: list[dict[str, Any]], consumer: str | None = None) -> str:
    """One sentence of evidence that faulted data or failures reached the consumer, or ''.

    A read by another task counts when that task is upstream of the consumer (``upstream_of``):
    the faulted data flowed into what the consumer read."""
    for f in faults:
        if f["reached"] is False:
            continue
        if f["site"] and f["lease_id"] is None and f["rows_changed"] != 0:
            return f["why"]  # faulted in memory as a step loaded it, and the run went on
        for r in f["reads"]:
            if r["matches"] is True and r["role"] in ("consumer", "gate"):
                return f"{r['role']} {r['task']} read the faulted {r['target']}"
            if r["matches"] is True and consumer and consumer in r.get("upstream_of", ()):
                return (
                    f"{r['task']} read the faulted {r['target']} (upstream of consumer {consumer})"
                )
        calls = f["calls"]
        if calls and (calls["failed"] > 0 or (calls["intercepted"] > 0 and f["slowed"])):
            return f["why"]
    return ""


def _not_reached_reason(faults: list[dict[str, Any]], outcome: Event | None) -> str:
    why = next((f["why"] for f in faults if f["reached"] is False and f["why"]), "")
    why = why or next((f["why"] for f in faults if f["why"]), "")
    if not why:
        why = "no evidence that the fault reached the pipeline was recorded"
    if outcome is not None and outcome.kind == "consumer_started":
        return f"{why}; consumer {outcome.source} ran on data the fault did not reach"
    if outcome is not None and outcome.kind in HALT_KINDS:
        return f"{why}; the halt by {outcome.source or outcome.kind} did not come from it"
    return why


def _evidence(
    evs: list[Event],
    faults: list[dict[str, Any]],
    halt: Event | None,
    retries: list[dict[str, Any]],
    consumer: Event | None,
) -> dict[str, Any]:
    gate_passed = _first_of(evs, ("gate_passed",))
    gate_failed = next((e for e in evs if e.kind == "gate_failed" and _is_detection(e)), None)
    gate_crash = next(
        (
            e
            for e in evs
            if e.kind == "gate_crashed" or (e.kind == "gate_failed" and not _is_detection(e))
        ),
        None,
    )
    gate_outcome = gate_failed or gate_crash
    gate_event = gate_outcome or gate_passed
    fingerprints: dict[str, Any] = {}
    for f in faults:
        fingerprints.update(f["fingerprint"] or {})
    rows = [f["rows_changed"] for f in faults if f["rows_changed"] is not None]
    calls = [f["calls"] for f in faults if f["calls"] is not None]
    return {
        "faults": faults,
        "fingerprints": fingerprints,
        "reads": [dict(r, lease_id=f["lease_id"]) for f in faults for r in f["reads"]],
        "rows_changed": sum(rows) if rows else None,
        "calls": (
            {
                "intercepted": sum(c["intercepted"] for c in calls),
                "failed": sum(c["failed"] for c in calls),
            }
            if calls
            else None
        ),
        "halt": (
            {
                "task": halt.source,
                "kind": halt.kind,
                "attempt": halt.data.get("attempt"),
                "final": True,
                "message": _short(halt.data.get("message", "")),
            }
            if halt
            else None
        ),
        "retries": retries,
        "gate": {
            "task": gate_event.source if gate_event else None,
            "ran_checks": True if (gate_failed or gate_passed) else (False if gate_crash else None),
            "passed": gate_passed is not None and gate_failed is None,
            "crashed": gate_crash is not None,
            "error_type": gate_crash.data.get("error_type") if gate_crash else None,
            "message": _short(gate_outcome.data.get("message", "")) if gate_outcome else "",
            "failed": (gate_failed.data.get("failed") or []) if gate_failed else [],
        },
        "consumer": {"task": consumer.source, "started": True} if consumer else None,
        "alerts": [
            {
                "channel": e.data.get("channel") or e.source or "alert",
                "delivered": e.kind == "alert_sent" and e.data.get("delivered", True) is not False,
                "status": e.data.get("status"),
            }
            for e in evs
            if e.kind in ("alert_sent", "alert_failed")
        ],
    }


# --------------------------------------------------------------------------------------- utils
def _first_of(evs: list[Event], kinds: tuple[str, ...]) -> Event | None:
    return next((e for e in evs if e.kind in kinds), None)


def _latency(start: Event | None, end: Event | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end.ts - start.ts), 6)


def _restore_failed(evs: list[Event]) -> bool:
    failed = {e.data.get("lease_id") for e in evs if e.kind == "restore_failed"}
    restored = {e.data.get("lease_id") for e in evs if e.kind == "restored"}
    return bool(failed - restored)


def _short(text: Any, limit: int = 300) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
