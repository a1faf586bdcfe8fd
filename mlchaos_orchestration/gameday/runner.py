"""Run a game day: bring the serving stack up, measure the API's peak, then run each experiment
— steady state before, the method's actions in parallel with probes sampled every second and
the kill switch armed, recovery after — and judge it.

Verdicts: ``held`` (every SLO probe within tolerance, no fallbacks served), ``degraded_gracefully``
(SLO held while fallbacks were served), ``breached`` (an SLO probe out of tolerance during or
after the method; the kill switch may have fired), ``aborted`` (stopped by ``mlchaos abort``).
Every experiment is a ledger run (orchestrator ``gameday``) with its timeline as events.
``kind: drift`` experiments (drift-monitor chaos) run on the same API through
:mod:`mlchaos_orchestration.gameday.drift_game`; their outcomes are ``GameDayResult.drift``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlchaos_orchestration.gameday.actions import GameContext
from mlchaos_orchestration.gameday.load import Step, measure_peak
from mlchaos_orchestration.gameday.plan import DriftExperiment, GameDayExperiment, GameDayFile
from mlchaos_orchestration.gameday.probes import MetricsSource, Probes, PrometheusSource, Sample
from mlchaos_orchestration.gameday.stack import StackError

PHASES = ("before", "method", "after")


@dataclass
class Outcome:
    """One experiment's verdict and the evidence behind it."""

    name: str
    mitigation: bool
    verdict: str
    reason: str
    run_id: str
    p99_ms: float | None  # worst reading of the latency probe under load (warm-up excluded)
    rps: float | None  # achieved request rate under load
    target_rps: float | None
    fallback_ratio: float | None
    error_ratio: float | None
    kill_switch: dict[str, Any]
    windows: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    pipeline: dict[str, Any] | None = None
    load: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class GameDayResult:
    """The whole game day: the measured peak and every experiment's outcome."""

    peak_rps: float
    peak_steps: list[Step]
    slo_ms: float
    source: str
    outcomes: list[Outcome]
    started_at: float
    duration_s: float
    drift: list[Any] = field(default_factory=list)  # drift_game.DriftOutcome, kind: drift

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "outcomes"},
            "outcomes": [asdict(o) for o in self.outcomes],
        }


class _Timeline:
    def __init__(self, ledger: Any, run_id: str) -> None:
        self.ledger, self.run_id = ledger, run_id
        self.items: list[dict[str, Any]] = []

    def __call__(self, what: str, data: dict[str, Any]) -> None:
        now = time.time()
        self.items.append({"t": now, "what": what, **data})
        self.ledger.record(self.run_id, f"gameday_{what}", source="gameday", ts=now, **data)


def run_experiment(
    exp: GameDayExperiment,
    plan: GameDayFile,
    ctx: GameContext,
    probes: Probes,
    ledger: Any,
    suite_id: str | None = None,
) -> Outcome:
    """Run one experiment against a running stack (the API already has ``exp.mitigation``)."""
    settings = plan.gameday
    run_id = ledger.start_run(
        exp.name, pipeline="prediction_api", orchestrator="gameday", suite_id=suite_id,
        meta={"mitigation": exp.mitigation, "method": [a.model_dump() for a in exp.method]},
    )  # fmt: skip
    timeline = _Timeline(ledger, run_id)
    ctx.note = timeline
    marks: dict[str, int] = {}
    phase_of: list[str] = []

    def sample(phase: str | None = None) -> list[Sample]:
        got = probes.read()
        phase_of.extend([phase or fault_phase()] * len(got))
        return got

    def fault_phase() -> str:
        """warmup (the load's first seconds) / before any fault started / while one is active /
        after every one stopped."""
        faults = [k for a, k in zip(exp.method, keys, strict=True) if a.kind_label != "load"]
        loads = [started[k] for a, k in zip(exp.method, keys, strict=True)
                 if a.kind_label == "load" and k in started]  # fmt: skip
        if loads and time.monotonic() - min(loads) < warmup:
            return "warmup"
        if not any(k in started for k in faults):
            return "before"
        if any(k in started and k not in stopped for k in faults):
            return "method"
        return "after"

    keys = [a.key(i) for i, a in enumerate(exp.method)]
    # the spawn burst stays inside every probe's window for window_s more seconds
    warmup = settings.warmup_s + max(p.window_s for p in settings.steady_state)
    started: dict[str, float] = {}
    stopped: dict[str, float] = {}

    # ------------------------------------------------------------------ before
    timeline("steady_state_check", {"phase": "before"})
    end = time.monotonic() + settings.before_s
    while time.monotonic() < end:
        sample("before")
        time.sleep(settings.sample_every_s)
    marks["before"] = len(probes.samples)

    # ------------------------------------------------------------------ method
    results: dict[str, dict[str, Any]] = {}
    windows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    stop_cond = settings.stop_conditions
    streak = 0
    fired: dict[str, Any] = {"fired": False}
    aborted = False

    def stop_all(reason: str) -> None:
        for action, key in zip(exp.method, keys, strict=True):
            if key in started and key not in stopped:
                results[key] = {**results.get(key, {}), **action.stop(ctx, key)}
                stopped[key] = time.monotonic()
                timeline("action_stopped", {"action": key, "reason": reason, **results[key]})

    try:
        while True:
            now = time.monotonic() - t0
            for action, key in zip(exp.method, keys, strict=True):
                if key not in started and now >= action.offset_s and not fired["fired"]:
                    results[key] = action.start(ctx, key)
                    started[key] = time.monotonic()
                    timeline("action_started", {"action": key, **results[key]})
                due = action.duration_s is not None and now >= action.offset_s + action.duration_s
                if key in started and key not in stopped and (due or action.finished(ctx, key)):
                    results[key] = {**results[key], **action.stop(ctx, key)}
                    stopped[key] = time.monotonic()
                    timeline("action_stopped", {"action": key, "reason": "done", **results[key]})
            got = sample()
            if stop_cond is not None and not fired["fired"]:
                reading = next(s for s in got if s.probe == stop_cond.probe)
                if reading.ok is not None and phase_of[-1] != "warmup":  # no data: no verdict
                    streak = streak + 1 if reading.ok is False else 0
                if streak >= stop_cond.consecutive:
                    breach_at = time.monotonic()
                    timeline("kill_switch", {"probe": stop_cond.probe, "value": reading.value})
                    stop_all("kill switch")
                    fired = {
                        "fired": True,
                        "probe": stop_cond.probe,
                        "value": reading.value,
                        "consecutive": stop_cond.consecutive,
                        "delay_s": round(time.monotonic() - breach_at, 3),
                    }
            if ledger.abort_requested(run_id):
                timeline("aborted", {"by": "mlchaos abort"})
                stop_all("abort")
                aborted = True
            if fired["fired"] or aborted:
                break  # every started action is stopped; the others never start
            if all(k in stopped for k in started) and len(started) == len(keys):
                break
            time.sleep(max(0.0, settings.sample_every_s - 0.05))
    finally:
        stop_all("end of method")
    marks["method"] = len(probes.samples)
    for action, key in zip(exp.method, keys, strict=True):
        if key in started and action.kind_label != "load":
            windows.append(
                {"action": key, "start": started[key] - t0, "end": stopped.get(key, t0) - t0}
            )

    # ------------------------------------------------------------------ rollbacks
    for index, action in enumerate(exp.rollbacks):  # always, also after the kill switch
        key = f"rollback-{action.key(index)}"
        try:
            timeline("rollback_started", {"action": key, **action.start(ctx, key)})
            time.sleep(action.duration_s or 0.0)
        finally:
            timeline("rollback_stopped", {"action": key, **action.stop(ctx, key)})

    # ------------------------------------------------------------------ after
    timeline("steady_state_check", {"phase": "after"})
    end = time.monotonic() + settings.after_s
    while time.monotonic() < end:
        sample("after")
        time.sleep(settings.sample_every_s)

    samples = [dict(asdict(s), phase=p) for s, p in zip(probes.samples, phase_of, strict=True)]
    loads = [
        {"action": k, "samples": ctx.handles[k].samples(), "rate": results[k].get("rate")}
        for k in keys
        if k.startswith("load#") and k in ctx.handles
    ]
    outcome = judge(exp, plan, run_id, samples, fired, aborted, timeline.items, windows, loads)
    outcome.pipeline = next(
        (results[k] for k in keys if k.startswith("pipeline#") and k in results), None
    )
    if outcome.pipeline is not None and not outcome.pipeline.get("within_sla", False):
        if outcome.verdict in ("held", "degraded_gracefully"):
            outcome.verdict = "breached"
            outcome.reason = "the batch pipeline did not finish within its SLA: " + str(
                outcome.pipeline.get("reason")
            )
    ledger.set_verdict(run_id, {"verdict": outcome.verdict, "reason": outcome.reason})
    ledger.end_run(run_id, "aborted" if aborted else "finished")
    return outcome


def judge(
    exp: GameDayExperiment,
    plan: GameDayFile,
    run_id: str,
    samples: list[dict[str, Any]],
    fired: dict[str, Any],
    aborted: bool,
    timeline: list[dict[str, Any]],
    windows: list[dict[str, Any]],
    loads: list[dict[str, Any]],
) -> Outcome:
    """The verdict from the probe samples of the method and recovery phases."""
    specs = {p.name: p for p in plan.gameday.steady_state}
    breaches = [
        s
        for s in samples
        if specs[s["probe"]].role == "slo" and s["ok"] is False and s["phase"] != "warmup"
    ]

    def worst(kind: str, phases: tuple[str, ...] = ("before", "method", "after")) -> float | None:
        """Worst reading under load (warm-up excluded)."""
        vals = [
            s["value"]
            for s in samples
            if s["phase"] in phases and specs[s["probe"]].kind == kind and s["value"] is not None
        ]
        return round(max(vals), 4) if vals else None

    fallback = worst("fallback_ratio", ("method", "after"))
    rps = [x["requests"] for load in loads for x in load["samples"][1:]]
    target = next((load["rate"] for load in loads), None)
    if aborted:
        verdict, reason = "aborted", "stopped by mlchaos abort"
    elif breaches:
        first = breaches[0]
        verdict = "breached"
        when = {
            "before": "before any fault (the load alone)",
            "method": "while the fault was active",
            "after": "after the fault was removed",
        }[first["phase"]]
        reason = f"{first['probe']} = {first['value']:.4g} outside its tolerance {when}"
        if fired.get("fired"):
            reason += f"; kill switch fired after {fired['consecutive']} breaches in a row"
    elif fallback:
        verdict = "degraded_gracefully"
        reason = f"SLO held while fallbacks were served (up to {fallback:.1%} of requests)"
    else:
        verdict, reason = "held", "every SLO probe stayed within tolerance"
    return Outcome(
        name=exp.name,
        mitigation=exp.mitigation,
        verdict=verdict,
        reason=reason,
        run_id=run_id,
        p99_ms=worst("latency_p99"),
        rps=round(sum(rps) / len(rps), 1) if rps else None,
        target_rps=target,
        fallback_ratio=fallback,
        error_ratio=worst("error_ratio"),
        kill_switch=fired,
        windows=windows,
        timeline=timeline,
        samples=samples,
        load=loads,
    )


def run_gameday(
    plan: GameDayFile,
    workdir: Path,
    *,
    names: list[str] | None = None,
    use_prometheus: bool | None = None,
    ledger: Any = None,
    peak_rps: float | None = None,
    on_progress: Any = None,
) -> GameDayResult:
    """Bring the stack up, measure the peak (unless given), run the experiments, tear down."""
    import shutil

    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.gameday.materialize import prepare_serving
    from mlchaos_orchestration.gameday.serving import ServingConfig
    from mlchaos_orchestration.gameday.stack import (
        ApiServer,
        PrometheusServer,
        RedisServer,
        free_port,
    )
    from mlchaos_orchestration.interceptors.proxy import FaultProxy

    say = on_progress or (lambda _msg: None)
    settings = plan.gameday
    ledger = ledger or Ledger()
    chosen = [plan.experiment(n) for n in names] if names else plan.experiments
    want_prom = settings.prometheus if use_prometheus is None else use_prometheus
    started_at, t_start = time.time(), time.monotonic()
    workdir = workdir.resolve()  # the servers run in their own folders
    workdir.mkdir(parents=True, exist_ok=True)
    api_port = free_port()
    redis = RedisServer(workdir / "redis").start()
    proxy = prom = api = None
    try:
        assets = prepare_serving(redis.url, workdir / "serving")
        proxy = FaultProxy(("127.0.0.1", redis.port), name="redis").start()
        proxied = f"redis://{proxy.address[0]}:{proxy.address[1]}/0"
        say(f"stack: redis {redis.url} behind proxy {proxied}")
        if want_prom and shutil.which("prometheus"):
            prom = PrometheusServer([f"127.0.0.1:{api_port}"], workdir / "prometheus").start()
            say(f"stack: prometheus {prom.url} scraping the API every second")

        def serve(mitigation: bool) -> ApiServer:
            config = ServingConfig(
                proxied, str(assets.model_path), str(assets.defaults_path), mitigation=mitigation
            )
            return ApiServer(config.env(), workdir / "api", port=api_port).start()

        api = serve(True)
        if prom is not None:
            prom.wait_for_first_scrape()
        steps: list[Step] = []
        serving_exps = [e for e in chosen if not isinstance(e, DriftExperiment)]
        if peak_rps is None and not serving_exps:
            peak_rps = 0.0  # drift experiments only: no load, no peak to measure
        if peak_rps is None:
            peak_rps, steps = measure_peak(
                api.url, assets.user_ids, workdir / "peak", settings.slo_ms,
                settings.peak.rates, settings.peak.step_s,
            )  # fmt: skip
            for st in steps:
                say(
                    f"peak: {st.rate:g} req/s asked, {st.achieved_rps:g} served, p99 "
                    f"{st.p99_ms if st.p99_ms is None else round(st.p99_ms)} ms, errors "
                    f"{st.error_ratio:.1%}, fallbacks {st.fallback_ratio:.1%}: "
                    f"{'ok' if st.ok else 'over'}"
                )
            if peak_rps <= 0:
                raise StackError(
                    f"the API held none of the rates tried ({settings.peak.rates[:3]}...) with "
                    f"p99 under {settings.slo_ms:g} ms: is the machine overloaded?"
                )
            say(
                f"peak: {peak_rps:g} req/s (p99 under {settings.slo_ms:g} ms, no errors, "
                "under 1% fallbacks)"
            )
        source: Any = PrometheusSource(prom.url) if prom else MetricsSource(api.url + "/metrics")
        outcomes = []
        drifts = []
        for exp in chosen:
            if isinstance(exp, DriftExperiment):
                from mlchaos_orchestration.gameday.drift_game import run_drift_here

                drifts.append(run_drift_here(exp, api.url, ledger, say))
                continue
            if api.mitigation_on != exp.mitigation:
                api.stop()
                api = serve(exp.mitigation)
            ctx = GameContext(
                api.url, {"redis": proxy}, peak_rps, assets.user_ids, workdir / exp.name,
                note=lambda *_: None,
            )  # fmt: skip
            ctx.workdir.mkdir(parents=True, exist_ok=True)
            probes = Probes(settings.steady_state, source)
            say(f"experiment {exp.name}: mitigation {'on' if exp.mitigation else 'off'}")
            outcome = run_experiment(exp, plan, ctx, probes, ledger)
            say(f"experiment {exp.name}: {outcome.verdict} ({outcome.reason})")
            outcomes.append(outcome)
            if isinstance(source, MetricsSource):
                source.scrapes.clear()
            api.stop()  # fresh counters and histograms for the next experiment
            api = serve(True)
        return GameDayResult(
            peak_rps, steps, settings.slo_ms, source.name, outcomes, started_at,
            round(time.monotonic() - t_start, 1), drifts,
        )  # fmt: skip
    finally:
        for server in (api, prom):
            if server is not None:
                server.stop()
        if proxy is not None:
            proxy.stop()
        redis.stop()
