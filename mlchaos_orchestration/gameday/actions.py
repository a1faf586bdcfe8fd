"""What a game day's ``method`` does, one small class per action kind, chosen by ``action:``.

Each action starts at ``offset_s`` after the method begins and is stopped after ``duration_s``
(or by the kill switch / an abort, whichever comes first). ``stop()`` is idempotent and undoes
everything ``start()`` did: toxics removed, serving faults cleared, load and batch processes gone.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlchaos_orchestration.errors import SpecError


@dataclass
class GameContext:
    """What actions act on: the API, the proxies in front of its dependencies, the measured
    peak, the users known to the feature store, a scratch folder and the timeline."""

    api_url: str
    proxies: dict[str, Any]
    peak_rps: float
    user_ids: list[int]
    workdir: Path
    note: Callable[[str, dict[str, Any]], None]
    handles: dict[str, Any] = field(default_factory=dict)


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind_label: ClassVar[str] = ""
    offset_s: float = Field(0.0, ge=0, le=3600)
    duration_s: float | None = Field(None, gt=0, le=3600)

    def key(self, index: int) -> str:
        return f"{self.kind_label}#{index}"

    def start(self, ctx: GameContext, key: str) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self, ctx: GameContext, key: str) -> dict[str, Any]:
        raise NotImplementedError

    def finished(self, ctx: GameContext, key: str) -> bool:
        """True when the action ended by itself (a batch run done)."""
        return False


class LoadAction(_Action):
    """Locust load on the prediction API at ``rate`` req/s, or ``"150%"`` of the measured peak."""

    kind_label: ClassVar[str] = "load"
    action: Literal["load"]
    rate: float | str = "100%"

    def requests_per_s(self, peak: float) -> float:
        if isinstance(self.rate, str):
            text = self.rate.strip()
            if not text.endswith("%"):
                raise SpecError([f"load rate {self.rate!r}: give a number or a percentage of peak"])
            if peak <= 0:
                raise SpecError(["load rate in % of peak needs a measured peak (> 0 req/s)"])
            return round(peak * float(text[:-1]) / 100.0, 1)
        return float(self.rate)

    def start(self, ctx: GameContext, key: str) -> dict[str, Any]:
        from mlchaos_orchestration.gameday.load import LoadProcess

        rate = self.requests_per_s(ctx.peak_rps)
        duration = self.duration_s or 3600.0
        load = LoadProcess(ctx.api_url, rate, duration, ctx.user_ids, ctx.workdir / "load")
        ctx.handles[key] = load.start()
        return {"rate": rate, "pid": load.proc.pid if load.proc else None}

    def stop(self, ctx: GameContext, key: str) -> dict[str, Any]:
        load = ctx.handles.get(key)
        if load is not None:
            load.stop()
        return {}


class NetworkAction(_Action):
    """A toxic on the proxy in front of ``target`` (e.g. ``redis``): latency, bandwidth,
    slicer, timeout, reset_peer or limit_data, on a ``toxicity`` share of connections."""

    kind_label: ClassVar[str] = "network"
    action: Literal["network"]
    target: str
    kind: Literal["latency", "bandwidth", "slicer", "timeout", "reset_peer", "limit_data"]
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)
    latency_ms: float | None = Field(None, ge=0, le=60_000)
    jitter_ms: float | None = Field(None, ge=0, le=60_000)
    rate_kbps: float | None = Field(None, ge=0)
    timeout_ms: float | None = Field(None, ge=0)
    bytes: float | None = Field(None, ge=0)
    average_size: float | None = Field(None, ge=1)
    size_variation: float | None = Field(None, ge=0)
    delay_us: float | None = Field(None, ge=0)

    def start(self, ctx: GameContext, key: str) -> dict[str, Any]:
        from mlchaos_orchestration.interceptors.proxy import Toxic

        proxy = ctx.proxies.get(self.target)
        if proxy is None:
            raise SpecError(
                [f"network: no proxy in front of {self.target!r} ({sorted(ctx.proxies)})"]
            )
        attrs = {k: float(v) for k in _TOXIC_ATTRS if (v := getattr(self, k)) is not None}
        proxy.add(Toxic(key, self.kind, self.stream, self.toxicity, attrs))
        return {"target": self.target, "toxic": self.kind, **attrs}

    def stop(self, ctx: GameContext, key: str) -> dict[str, Any]:
        proxy = ctx.proxies.get(self.target)
        if proxy is not None and any(t.name == key for t in proxy.toxics()):
            proxy.remove(key)
        return {}


#: the proxy's toxic attributes (see :mod:`mlchaos_orchestration.interceptors.proxy`)
_TOXIC_ATTRS = (
    "latency_ms", "jitter_ms", "rate_kbps", "timeout_ms", "bytes",
    "average_size", "size_variation", "delay_us",
)  # fmt: skip


class ServingFaultAction(_Action):
    """Latency / errors in the API's responses, or features dropped or nulled at inference."""

    kind_label: ClassVar[str] = "serving"
    action: Literal["serving_fault"]
    latency_ms: float = Field(0.0, ge=0, le=10_000)
    jitter_ms: float = Field(0.0, ge=0, le=10_000)
    error_rate: float = Field(0.0, ge=0, le=1)
    rate: float = Field(1.0, ge=0, le=1)
    drop_features: list[str] = Field(default_factory=list)
    null_features: list[str] = Field(default_factory=list)

    def start(self, ctx: GameContext, key: str) -> dict[str, Any]:
        body = self.model_dump(exclude={"action", "offset_s", "duration_s"})
        _call(ctx.api_url + "/mlchaos/serving-faults", "PUT", body)
        return body

    def stop(self, ctx: GameContext, key: str) -> dict[str, Any]:
        _call(ctx.api_url + "/mlchaos/serving-faults", "DELETE")
        return {}


class PipelineAction(_Action):
    """The example's batch pipeline run with one experiment of the example matrix (e.g.
    ``connector-failure``) in its own process; judged against ``sla_s``."""

    kind_label: ClassVar[str] = "pipeline"
    action: Literal["pipeline"]
    experiment: str
    sla_s: float = Field(60.0, gt=0)

    def start(self, ctx: GameContext, key: str) -> dict[str, Any]:
        from mlchaos_orchestration.gameday.stack import spawn_group

        out = ctx.workdir / f"{key.replace('#', '-')}.json"
        cmd = [
            sys.executable,
            "-m",
            "mlchaos_orchestration.gameday.batch",
            self.experiment,
            str(out),
        ]
        proc = spawn_group(cmd, ctx.workdir / "batch.log")
        ctx.handles[key] = (proc, out, time.time())
        return {"experiment": self.experiment, "sla_s": self.sla_s}

    def finished(self, ctx: GameContext, key: str) -> bool:
        handle = ctx.handles.get(key)
        return handle is not None and handle[0].poll() is not None

    def stop(self, ctx: GameContext, key: str) -> dict[str, Any]:
        proc, out, started = ctx.handles.get(key, (None, None, 0.0))
        if proc is None:
            return {}
        from mlchaos_orchestration.gameday.stack import stop_group

        stop_group(proc, grace_s=10.0)  # SIGTERM: the runner restores in its finally blocks
        result = json.loads(out.read_text()) if out and out.exists() else {}
        duration = result.get("duration_s", round(time.time() - started, 1))
        completed = bool(result.get("completed"))
        return {
            "pipeline_verdict": result.get("verdict"),
            "completed": completed,
            "duration_s": duration,
            "within_sla": completed and duration <= self.sla_s,
            "reason": result.get("reason", "stopped before it finished"),
        }


ActionSpec = Annotated[
    LoadAction | NetworkAction | ServingFaultAction | PipelineAction,
    Field(discriminator="action"),
]


def _call(url: str, method: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=5) as resp:
        resp.read()
