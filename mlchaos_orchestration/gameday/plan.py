"""The game-day file: steady state (probes + tolerances), a stop condition (the kill switch) and
experiments whose ``method`` runs actions — load, network toxics, serving faults, a batch
pipeline experiment — in parallel, each with a start offset and a duration.

```yaml
gameday:
  slo_ms: 200
  peak: {rates: [50, 100, 150, 200], step_s: 4}
  steady_state:
    - {name: p99_latency, kind: latency_p99, max: 200}
    - {name: error_ratio, kind: error_ratio, max: 0.01}
    - {name: fallback_ratio, kind: fallback_ratio, role: info}
  stop_conditions: {probe: p99_latency, consecutive: 3}
experiments:
  - name: redis-latency
    mitigation: true
    method:
      - {action: load, rate: 150%, duration_s: 20}
      - {action: network, target: redis, kind: latency, latency_ms: 100, jitter_ms: 20,
         offset_s: 4, duration_s: 12}
  - name: amount-drift-india
    kind: drift               # drift-monitor chaos: detection latency, alerts on or off
    traffic_drift: {columns: [amount], k: 2, segment: {country: IN}, start: "2026-11-20"}
    alerts: on
    monitor: {reference: 2000, window: 2000, step: 200}
    expect: caught
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from mlchaos_orchestration.errors import SpecError
from mlchaos_orchestration.gameday.actions import ActionSpec
from mlchaos_orchestration.gameday.probes import ProbeSpec


class PeakSpec(BaseModel):
    """How the API's peak rate is measured: the rates tried, seconds per rate."""

    model_config = ConfigDict(extra="forbid")

    rates: list[float] = Field(default_factory=lambda: [25, 50, 75, 100, 150, 200, 250, 300])
    step_s: float = Field(4.0, ge=2, le=60)


class StopCondition(BaseModel):
    """The kill switch: ``probe`` out of tolerance in ``consecutive`` samples in a row."""

    model_config = ConfigDict(extra="forbid")

    probe: str
    consecutive: int = Field(3, ge=1, le=100)


class GameDaySettings(BaseModel):
    """What every experiment of the file shares."""

    model_config = ConfigDict(extra="forbid")

    slo_ms: float = Field(200.0, gt=0)
    peak: PeakSpec = Field(default_factory=PeakSpec)
    steady_state: list[ProbeSpec]
    stop_conditions: StopCondition | None = None
    sample_every_s: float = Field(1.0, ge=0.2, le=10)
    before_s: float = Field(3.0, ge=0, le=120, description="steady-state check before")
    after_s: float = Field(4.0, ge=0, le=300, description="recovery check after")
    warmup_s: float = Field(
        3.0,
        ge=0,
        le=120,
        description="the load's first seconds (users spawning), plus a probe window: not judged",
    )
    prometheus: bool = Field(True, description="use a Prometheus server when one is installed")

    @model_validator(mode="after")
    def _known_probe(self) -> GameDaySettings:
        names = [p.name for p in self.steady_state]
        if len(set(names)) != len(names):
            raise ValueError("steady_state probe names must be unique")
        if self.stop_conditions and self.stop_conditions.probe not in names:
            raise ValueError(
                f"stop_conditions.probe {self.stop_conditions.probe!r} is not a steady_state "
                f"probe ({', '.join(names)})"
            )
        return self


class GameDayExperiment(BaseModel):
    """One exercise: the mitigation switch and the method's actions."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    mitigation: bool = True
    method: list[ActionSpec] = Field(min_length=1)
    rollbacks: list[ActionSpec] = Field(
        default_factory=list,
        description="run after the method whatever happened (kill switch included), each held "
        "for its duration_s; every method action already undoes itself when stopped",
    )

    @property
    def duration_s(self) -> float:
        """When the last action ends."""
        return max(a.offset_s + (a.duration_s or 0.0) for a in self.method)


class DriftMonitorSpec(BaseModel):
    """The drift monitor of a drift experiment: its reference (the first requests), the sliding
    window it tests, how often, which columns, and the share of drifted columns that alerts."""

    model_config = ConfigDict(extra="forbid")

    reference: int = Field(2000, ge=200, le=100_000, description="first requests = reference")
    window: int = Field(2000, ge=50, le=100_000)
    step: int = Field(200, ge=1, le=100_000)
    columns: list[str] | None = Field(
        None,
        description="default: amount and the model's score (traffic), group + label (feedback)",
    )
    drift_share: float = Field(0.5, gt=0, le=1)


DRIFT_OUTCOMES = ("caught", "unalerted", "silent", "false_alarm")


class DriftExperiment(BaseModel):
    """Drift-monitor chaos (``kind: drift``): the example's traffic replayed through the API
    with a ``traffic_drift`` fault (or its feedback labels with a ``feedback_skew`` fault) from
    the fault's ``start``; the monitor's detection latency, with ``alerts`` on or off."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["drift"]
    description: str = ""
    traffic_drift: dict[str, Any] | None = None
    feedback_skew: dict[str, Any] | None = None
    alerts: bool = True
    monitor: DriftMonitorSpec = Field(default_factory=DriftMonitorSpec)
    days: list[str] | None = Field(None, description="example days replayed (default: all)")
    expect: Literal["caught", "unalerted", "silent", "false_alarm"] | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _one_fault(self) -> DriftExperiment:
        if (self.traffic_drift is None) == (self.feedback_skew is None):
            raise ValueError("give exactly one of traffic_drift or feedback_skew")
        fault = self.fault()
        if not getattr(fault, "start", None):
            raise ValueError(f"{fault.name}: give start (the drift must follow the reference)")
        return self

    def fault(self) -> Any:
        """The fault (``TrafficDrift`` / ``FeedbackSkew``); ValueError when its spec is bad."""
        import mlchaos_orchestration.faults.traffic  # noqa: F401 - registers the faults
        from mlchaos_orchestration.faults import build_fault

        name = "traffic_drift" if self.traffic_drift is not None else "feedback_skew"
        spec = self.traffic_drift if self.traffic_drift is not None else self.feedback_skew
        try:
            return build_fault({**(spec or {}), "fault": name})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"{name}.{where}: {err['msg']}") from None


def _experiment_kind(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return "drift" if kind == "drift" else "serving"


ExperimentSpec = Annotated[
    Annotated[GameDayExperiment, Tag("serving")] | Annotated[DriftExperiment, Tag("drift")],
    Discriminator(_experiment_kind),
]
_TAGS = ("serving", "drift")


class GameDayFile(BaseModel):
    """A whole game-day file."""

    model_config = ConfigDict(extra="forbid")

    gameday: GameDaySettings
    experiments: list[ExperimentSpec] = Field(min_length=1)

    def experiment(self, name: str) -> GameDayExperiment | DriftExperiment:
        for exp in self.experiments:
            if exp.name == name:
                return exp
        known = ", ".join(e.name for e in self.experiments)
        raise SpecError([f"no game-day experiment {name!r} (known: {known})"])


def load_gameday(path: str | Path) -> GameDayFile:
    """Parse and validate a game-day file; :class:`SpecError` lists every problem, one a line."""
    try:
        raw: Any = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError([f"{path}: {exc}"]) from None
    try:
        return GameDayFile.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in _untagged(err['loc'])) or '<file>'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        ]
        raise SpecError(problems) from None


def _untagged(loc: tuple[Any, ...]) -> list[Any]:
    """An error's location without the experiment kind's tag (``experiments.0.method``)."""
    return [p for i, p in enumerate(loc) if not (i == 2 and loc[0] == "experiments" and p in _TAGS)]
