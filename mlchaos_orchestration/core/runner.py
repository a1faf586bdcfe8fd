"""Run experiments against a plain Python pipeline and record everything in the ledger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlchaos_orchestration.core.alerts import alert
from mlchaos_orchestration.core.experiment import Experiment, FaultEntry
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.pipeline import Pipeline
from mlchaos_orchestration.core.session import (
    AppliedFault,
    apply_fault,
    guard,
    plan,
    recover,
    restore_lease,
)
from mlchaos_orchestration.core.verdict import compute_verdict
from mlchaos_orchestration.faults.base import ApplyContext, DataFault, EnvironmentFault
from mlchaos_orchestration.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Outcome of one experiment run."""

    run_id: str
    experiment: str
    verdict: dict[str, Any]
    planned: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.verdict.get("verdict"))


def run_experiment(
    pipeline: Pipeline,
    exp: Experiment,
    *,
    ledger: Ledger | None = None,
    settings: Settings | None = None,
    ds: str | None = None,
    dry_run: bool = False,
    suite_id: str | None = None,
    on_event: Callable[[str, str], None] | None = None,
) -> RunResult:
    """Run ``exp`` against ``pipeline``: apply faults, run steps, alert, restore, judge."""
    settings = settings or get_settings()
    ledger = ledger or Ledger(settings.ledger_url)
    recover(ledger, settings=settings)
    ctx = ApplyContext(seed=exp.seed, ds=ds, s3_endpoint_url=settings.s3_endpoint_url)
    from mlchaos_orchestration.core.control import render_fault

    env_faults = [render_fault(e.fault, ds) for e in exp.environment_faults]  # type: ignore[arg-type]
    assert all(isinstance(f, EnvironmentFault) for f in env_faults)
    for fault in env_faults:  # pre-flight: refuse before anything is recorded or touched
        guard(fault, ctx, exp.safety, settings)
    if dry_run:
        lines: list[str] = []
        for fault in env_faults:
            lines += plan(fault, ctx)
        for entry in exp.data_faults:
            lines.append(
                f"{entry.name}: in-memory input of step "
                f"{entry.at or exp.gate or pipeline.gate} (no stored data touched)"
            )
        return RunResult("dry-run", exp.name, {"verdict": None, "reason": "dry run"}, lines)
    run_id = ledger.start_run(
        exp.name,
        pipeline=pipeline.name,
        orchestrator="plain",
        control=exp.control,
        seed=exp.seed,
        suite_id=suite_id,
        meta={"experiment": exp.spec()},
    )
    ledger.record(run_id, "run_started", source="runner")
    ctx.run_id = run_id
    applied: list[AppliedFault] = []
    outputs: dict[str, Any] = {}
    try:
        for fault in env_faults:
            applied.append(
                apply_fault(
                    ledger,
                    fault,
                    ctx,
                    run_id=run_id,
                    safety=exp.safety,
                    settings=settings,
                )
            )
        with _hooks(ledger, run_id, any(a.lease.hook for a in applied)):
            outputs = _run_steps(pipeline, exp, ledger, run_id, on_event, settings)
    except Exception as exc:  # noqa: BLE001 - recorded as the run's error
        if not any(e.kind == "error" for e in ledger.events(run_id)):
            ledger.record(run_id, "error", source="runner", message=_one_line(exc))
    finally:
        for item in applied:
            restore_lease(ledger, item.lease.id, settings=settings, reason="run ended")
    verdict = compute_verdict(
        ledger.events(run_id),
        control=exp.control,
        alert_deadline_s=exp.safety.alert_deadline_s,
        alert_expected=exp.alert.expected,
    )
    ledger.set_verdict(run_id, verdict)
    ledger.end_run(run_id, "finished")
    return RunResult(run_id, exp.name, verdict, outputs=outputs)


def _hooks(ledger: Ledger, run_id: str, wanted: bool) -> Any:
    """The run's fault hooks, removed as soon as their lease ends (e.g. aborted elsewhere)."""
    from contextlib import nullcontext

    if not wanted:
        return nullcontext()
    from mlchaos_orchestration.interceptors.ledger_sync import LedgerHooks

    return LedgerHooks(ledger, run_id=run_id)


def _run_steps(
    pipeline: Pipeline,
    exp: Experiment,
    ledger: Ledger,
    run_id: str,
    on_event: Callable[[str, str], None] | None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    from mlchaos_orchestration.core.control import observe_read

    gate = exp.gate or pipeline.gate
    consumer = exp.consumer or pipeline.consumer
    outputs: dict[str, Any] = {}
    for step in pipeline.steps:
        if ledger.abort_requested(run_id):
            ledger.record(run_id, "error", source="runner", message="aborted")
            break
        role = "gate" if step.name == gate else "consumer" if step.name == consumer else None
        if role is not None:  # what the step is about to read: still the faulted content?
            observe_read(run_id, step.name, role, ledger, settings=settings)
        inputs = {name: outputs[name] for name in step.inputs}
        for entry in _faults_at(exp, step.name, gate):
            inputs = _apply_data_fault(entry, inputs, exp.seed, ledger, run_id, step.name)
        if step.name == consumer:
            ledger.record(run_id, "consumer_started", source=step.name)
        _notify(on_event, "step", step.name)
        try:
            outputs[step.name] = step.fn(**inputs)
        except Exception as exc:  # noqa: BLE001 - a failing step halts the run, as in production
            kind = record_failure(ledger, run_id, step.name, exc, gate=step.name == gate)
            _notify(on_event, kind, step.name)
            if exp.alert.expected:
                alert(
                    ledger,
                    run_id,
                    text=f"pipeline {pipeline.name} halted at {step.name}: {_one_line(exc)}",
                    source=step.name,
                    webhook_url_env=exp.alert.webhook_url_env,
                    timeout_s=exp.alert.timeout_s,
                )
            break
        if step.name == gate:
            ledger.record(run_id, "gate_passed", source=step.name, checks_run=True)
            if exp.control:
                record_profile(ledger, run_id, step.name, inputs, pipeline.params)
    return outputs


def exception_chain(exc: BaseException) -> list[str]:
    """Qualified class names of ``exc`` and its causes / contexts (outermost first)."""
    names: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cls = type(current)
        names.append(f"{cls.__module__}.{cls.__qualname__}")
        current = current.__cause__ or current.__context__
    return names


def record_failure(
    ledger: Ledger, run_id: str, step: str, exc: BaseException, *, gate: bool, attempt: int = 1
) -> str:
    """Record the FINAL failure of a step: ``gate_failed`` (the gate ran its checks and found
    violations), ``gate_crashed`` (the gate failed otherwise) or ``task_failed``; return the
    kind recorded."""
    from mlchaos_orchestration.core.verdict import is_check_failure

    message = _one_line(exc)
    if not gate:
        ledger.record(
            run_id, "task_failed", source=step, attempt=attempt, final=True, message=message
        )
        return "task_failed"
    if is_check_failure(*exception_chain(exc)):
        result = getattr(exc, "result", None)
        failed = [
            {k: f.get(k) for k in ("expectation", "column", "unexpected_percent", "exception")}
            for f in (getattr(result, "failed", None) or [])
        ]
        ledger.record(
            run_id,
            "gate_failed",
            source=step,
            attempt=attempt,
            final=True,
            checks_run=True,
            message=message,
            failed=failed,
        )
        return "gate_failed"
    ledger.record(
        run_id,
        "gate_crashed",
        source=step,
        attempt=attempt,
        final=True,
        error_type=type(exc).__name__,
        message=message,
    )
    return "gate_crashed"


def record_profile(
    ledger: Ledger, run_id: str, source: str, inputs: dict[str, Any], params: dict[str, Any]
) -> None:
    """Record a profile of the clean gate input (the report's mutation suggestions use it)."""
    import pandas as pd

    from mlchaos_orchestration.gates.mutation import profile_frame

    frames = [v for v in inputs.values() if isinstance(v, pd.DataFrame)]
    if frames:
        ledger.record(
            run_id,
            "data_profile",
            source=source,
            profile=profile_frame(frames[0], **params.get("profile", {})),
        )


def _faults_at(exp: Experiment, step: str, gate: str | None) -> list[FaultEntry]:
    return [e for e in exp.data_faults if (e.at or gate) == step]


def _apply_data_fault(
    entry: FaultEntry, inputs: dict[str, Any], seed: int, ledger: Ledger, run_id: str, step: str
) -> dict[str, Any]:
    import pandas as pd

    fault = entry.fault
    assert isinstance(fault, DataFault)
    out = dict(inputs)
    for name, value in inputs.items():
        if isinstance(value, pd.DataFrame):
            result = fault.apply(value, seed)
            out[name] = result.frame
            ledger.record(
                run_id,
                "fault_applied",
                source=step,
                fault=fault.name,
                params=fault.spec(),
                seed=seed,
                input=name,
                site={"step": step, "input": name},
                rows_changed=int(result.summary()["rows_changed"]),
                details=result.summary(),
            )
    return out


def _notify(on_event: Callable[[str, str], None] | None, kind: str, name: str) -> None:
    if on_event is not None:
        on_event(kind, name)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
