"""The kill switch, verdicts and clean-up on a real stack (Redis, uvicorn, Locust, Prometheus)."""

from __future__ import annotations

import shutil
import time
from typing import Any

import pytest

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.gameday.actions import GameContext, ServingFaultAction
from mlchaos_orchestration.gameday.plan import GameDayFile
from mlchaos_orchestration.gameday.probes import MetricsSource, Probes, PrometheusSource
from mlchaos_orchestration.gameday.runner import run_experiment
from mlchaos_orchestration.gameday.stack import PrometheusServer, http_get


def plan(
    method: list[dict[str, Any]], consecutive: int = 2, mitigation: bool = True
) -> GameDayFile:
    return GameDayFile.model_validate(
        {
            "gameday": {
                "slo_ms": 200,
                "steady_state": [
                    {"name": "p99_latency", "kind": "latency_p99", "max": 200, "window_s": 2},
                    {"name": "error_ratio", "kind": "error_ratio", "max": 0.01, "window_s": 2},
                    {
                        "name": "fallback_ratio",
                        "kind": "fallback_ratio",
                        "role": "info",
                        "window_s": 2,
                    },
                ],  # fmt: skip
                "stop_conditions": {"probe": "p99_latency", "consecutive": consecutive},
                "before_s": 0,
                "after_s": 1,
            },
            "experiments": [{"name": "x", "mitigation": mitigation, "method": method}],
        }
    )


def context(serving: Any, api: Any, tmp_path: Any) -> GameContext:
    return GameContext(
        api.url, {"redis": serving.proxy}, 40.0, serving.assets.user_ids, tmp_path, lambda *_: None
    )


def run(
    spec: GameDayFile, serving: Any, api: Any, tmp_path: Any
) -> tuple[Any, GameContext, Ledger]:
    """Run the file's one experiment on the live stack, probes read from /metrics."""
    ctx = context(serving, api, tmp_path)
    probes = Probes(spec.gameday.steady_state, MetricsSource(api.url + "/metrics"))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    return run_experiment(spec.experiments[0], spec, ctx, probes, ledger), ctx, ledger


def test_kill_switch_stops_faults_and_load_within_two_seconds(
    serving: Any, api: Any, tmp_path: Any
) -> None:
    spec = plan(
        [
            {"action": "load", "rate": 30, "duration_s": 60},
            {"action": "serving_fault", "latency_ms": 400, "offset_s": 2, "duration_s": 60},
            {
                "action": "network",
                "target": "redis",
                "kind": "latency",
                "latency_ms": 5,
                "offset_s": 2,
                "duration_s": 60,
            },
        ]  # fmt: skip
    )
    start = time.monotonic()
    outcome, ctx, ledger = run(spec, serving, api, tmp_path)
    assert time.monotonic() - start < 30  # not the 60 s the actions asked for
    assert outcome.verdict == "breached" and outcome.kill_switch["fired"]
    assert outcome.kill_switch["delay_s"] <= 2.0
    load = ctx.handles["load#0"]
    assert not load.running()  # the Locust process is gone
    assert serving.proxy.toxics() == []
    assert http_get(api.url + "/mlchaos/serving-faults").count(b'"latency_ms":0.0') == 1
    kinds = [e.kind for e in ledger.events(outcome.run_id)]
    assert "gameday_kill_switch" in kinds
    assert ledger.get_run(outcome.run_id)["verdict"] == "breached"


def test_graceful_degradation_with_the_mitigation(serving: Any, api: Any, tmp_path: Any) -> None:
    spec = plan(
        [
            {"action": "load", "rate": 10, "duration_s": 9},
            {
                "action": "network",
                "target": "redis",
                "kind": "latency",
                "latency_ms": 100,
                "offset_s": 2,
                "duration_s": 5,
            },
        ],  # fmt: skip
        consecutive=100,
    )
    outcome, ctx, ledger = run(spec, serving, api, tmp_path)
    assert outcome.fallback_ratio and outcome.fallback_ratio > 0.2
    assert outcome.verdict == "degraded_gracefully", outcome.reason
    assert outcome.p99_ms is not None and outcome.p99_ms < 200


def test_abort_by_hand_stops_everything_and_rollbacks_still_run(
    serving: Any, api: Any, tmp_path: Any
) -> None:
    import threading

    spec = plan([{"action": "load", "rate": 10, "duration_s": 60}], consecutive=100)
    spec.experiments[0].rollbacks.append(
        ServingFaultAction(action="serving_fault", duration_s=0.1)  # clears serving faults
    )
    same_ledger = f"sqlite:///{tmp_path / 'ledger.db'}"  # `mlchaos abort` from elsewhere
    threading.Timer(3.0, lambda: Ledger(same_ledger).request_abort()).start()
    outcome, ctx, ledger = run(spec, serving, api, tmp_path)
    assert outcome.verdict == "aborted"
    assert not ctx.handles["load#0"].running()
    whats = [e["what"] for e in outcome.timeline]
    assert (
        whats.index("aborted") < whats.index("rollback_started") < whats.index("rollback_stopped")
    )


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed")
def test_prometheus_and_metrics_fallback_agree(serving: Any, api: Any, tmp_path: Any) -> None:
    from mlchaos_orchestration.gameday.load import LoadProcess

    target = api.url.removeprefix("http://")
    with PrometheusServer([target], tmp_path / "prom") as prom:
        prom.wait_for_first_scrape()
        load = LoadProcess(api.url, 30, 10, serving.assets.user_ids, tmp_path / "load").start()
        try:
            spec = plan([{"action": "load", "rate": 1, "duration_s": 1}]).gameday.steady_state
            rate = next(p for p in spec if p.kind == "error_ratio").model_copy(
                update={"kind": "request_rate", "name": "rps", "max": None, "min": 1,
                        "window_s": 4}
            )  # fmt: skip
            direct = MetricsSource(api.url + "/metrics")
            via_prom = PrometheusSource(prom.url)
            values: list[tuple[float | None, float | None]] = []
            for _ in range(9):
                direct.refresh()
                values.append((direct.value(rate), via_prom.value(rate)))
                time.sleep(1)
        finally:
            load.stop()
        both = [(d, p) for d, p in values if d and p]
        assert both, values
        d, p = both[-1]
        assert d == pytest.approx(30, rel=0.35) and p == pytest.approx(30, rel=0.35)
    assert not prom.running()


def test_kill_switch_before_the_fault_starts_ends_the_method(
    serving: Any, api: Any, tmp_path: Any
) -> None:
    """Overloaded before the fault: the kill switch fires, and the fault never starts."""
    spec = plan(
        [
            {"action": "load", "rate": 10, "duration_s": 60},
            {"action": "serving_fault", "latency_ms": 400, "offset_s": 0.5, "duration_s": 60},
            {
                "action": "network",
                "target": "redis",
                "kind": "latency",
                "latency_ms": 1,
                "offset_s": 50,
                "duration_s": 5,
            },
        ]  # fmt: skip
    )
    start = time.monotonic()
    outcome, ctx, ledger = run(spec, serving, api, tmp_path)
    assert outcome.kill_switch["fired"] and time.monotonic() - start < 30
    assert "network#2" not in {e.get("action") for e in outcome.timeline}
    assert serving.proxy.toxics() == []


def test_a_killed_game_day_leaves_no_server_behind(tmp_path: Any) -> None:
    """SIGKILL the process that started the servers: they die with it (PR_SET_PDEATHSIG)."""
    import subprocess
    import sys

    code = (
        "import time\n"
        "from mlchaos_orchestration.gameday.stack import RedisServer\n"
        "r = RedisServer().start(); print(r.proc.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    import psutil

    deadline = time.monotonic() + 5
    while psutil.pid_exists(child) and time.monotonic() < deadline:
        try:
            if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    alive = psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    assert not alive
