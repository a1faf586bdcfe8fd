"""Load from the orchestrator's side: :class:`LoadProcess` runs :mod:`.loadgen` (Locust) in a
child process and reads its per-second samples; :func:`measure_peak` finds the highest rate the
API holds with p99 under the SLO and no errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlchaos_orchestration.gameday.stack import spawn_group, stop_group


class LoadProcess:
    """Constant-rate Locust load against ``host`` in its own process group."""

    def __init__(
        self, host: str, rate: float, duration_s: float, user_ids: list[int], workdir: Path
    ) -> None:
        self.host, self.rate, self.duration_s = host, rate, duration_s
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ids_path = self.workdir / "user_ids.txt"
        self.ids_path.write_text("\n".join(map(str, user_ids)))
        fd, name = tempfile.mkstemp(prefix="load-", suffix=".jsonl", dir=self.workdir)
        os.close(fd)
        self.out = Path(name)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    def start(self) -> LoadProcess:
        cmd = [
            sys.executable, "-m", "mlchaos_orchestration.gameday.loadgen",
            "--host", self.host, "--rate", str(self.rate), "--duration", str(self.duration_s),
            "--ids", str(self.ids_path), "--out", str(self.out),
        ]  # fmt: skip
        self.proc = spawn_group(cmd, self.workdir / "loadgen.log")
        self.started_at = time.time()
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> None:
        if self.proc is not None:
            self.proc.wait(timeout)
            self.stopped_at = self.stopped_at or time.time()

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop the load now: SIGTERM (Locust stops its users), SIGKILL after ``grace_s``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_group(self.proc, grace_s)
        self.stopped_at = time.time()

    def samples(self) -> list[dict[str, Any]]:
        """Per-second samples written so far."""
        lines = self.out.read_text().splitlines() if self.out.exists() else []
        return [json.loads(line) for line in lines if line.strip()]


@dataclass
class Step:
    """One rate tried while measuring the peak."""

    rate: float
    achieved_rps: float
    p99_ms: float | None
    error_ratio: float
    ok: bool
    fallback_ratio: float = 0.0


def summarize(samples: list[dict[str, Any]], skip_s: int = 1) -> tuple[float, float | None, float]:
    """(achieved rps, p99 ms over the samples, error ratio), dropping the first ``skip_s``
    seconds (ramp-up). p99 is the worst per-second p99, a conservative reading."""
    used = samples[skip_s:] or samples
    total = sum(s["requests"] for s in used)
    failed = sum(s["failures"] for s in used)
    p99s = [s["p99_ms"] for s in used if s.get("p99_ms") is not None]
    rps = total / max(1, len(used))
    return rps, (max(p99s) if p99s else None), (failed / total if total else 0.0)


def _fallback_counts(host: str) -> tuple[float, float]:
    """(fallbacks, requests) counted by the API so far, from its ``/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    from mlchaos_orchestration.gameday.stack import http_get

    totals = {"mlchaos_fallbacks_total": 0.0, "mlchaos_requests_total": 0.0}
    for family in text_string_to_metric_families(http_get(host + "/metrics").decode()):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals["mlchaos_fallbacks_total"], totals["mlchaos_requests_total"]


def measure_peak(
    host: str,
    user_ids: list[int],
    workdir: Path,
    slo_ms: float,
    rates: list[float],
    step_s: float = 4.0,
) -> tuple[float, list[Step]]:
    """Try ``rates`` in increasing order; the peak is the highest rate whose requests were all
    served (achieved ≥ 90% of asked) at full quality, with p99 under ``slo_ms``, no errors and
    no fallbacks (under 1%: a rate held only by shedding load is not one the API serves). Stops
    at the first rate that fails."""
    steps: list[Step] = []
    peak = 0.0
    warm = LoadProcess(host, min(rates), 2.0, user_ids, workdir).start()  # first-call costs
    warm.wait(timeout=40)
    for rate in sorted(rates):
        before = _fallback_counts(host)
        load = LoadProcess(host, rate, step_s, user_ids, workdir).start()
        load.wait(timeout=step_s + 30)
        rps, p99, errors = summarize(load.samples())
        after = _fallback_counts(host)
        served = after[1] - before[1]
        fallbacks = (after[0] - before[0]) / served if served > 0 else 0.0
        ok = (
            p99 is not None and p99 < slo_ms and errors == 0 and rps >= 0.9 * rate
        ) and fallbacks < 0.01
        steps.append(Step(rate, round(rps, 1), p99, round(errors, 4), ok, round(fallbacks, 4)))
        if not ok:
            break
        peak = rate
    return peak, steps
