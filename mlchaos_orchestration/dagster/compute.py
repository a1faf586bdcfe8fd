"""Compute wrappers: code that runs in the step itself, right before / after the user's compute.

:func:`wrap_assets` rebuilds every op-backed asset and asset check of a ``Definitions`` with the
user's compute function wrapped (same op name, inputs, outputs, config, resources, retry policy,
tags; the user's code is not edited). The wrapper runs in the step's own process (also under the
multiprocess executor) and only acts in chaos runs:

* **before** the compute of the gate's or the consumer's step: ``control.observe_read`` takes
  whether the content the step is about to read is the faulted content (``target_read``), and
  records it when the step ends if the step was seen reading the target (inotify, see
  :func:`observe_roles`);
* **before** any other step's compute (role ``task``): the same, recorded only if the step was
  seen reading a faulted target, with ``upstream_of`` (the gate / consumer downstream of it);
* **after** the producing step is done - right after its compute returned when nothing goes to an
  IO manager (``MaterializeResult``, ``-> None``), else right after the IO manager's
  ``handle_output`` wrote the output (a fault applied before that write could be overwritten) -
  stored faults whose ``at`` names a step downstream of it are applied (see :mod:`.scope` for
  which step produces what). This is the documented "an asset writes its own file, a blocking
  check reads the file" pattern: the fault lands after the asset wrote the file and before the
  check step starts (the check step depends on the asset step's success). A fault applied before
  the run would be overwritten by the asset.

Limits: graph-backed assets are not wrapped (their loads still go through the chaos IO manager);
a check that runs inside the asset's own op (``check_specs=``) runs with the write, so nothing can
land between them; with ``step_dependency_config: {require_upstream_step_success: false}`` a
downstream step may start before a generator asset finished. Uses private Dagster constructors
(``OpDefinition.dagster_internal_init``, ``AssetsDefinition.dagster_internal_init``), pinned by
the tests for Dagster 1.13.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mlchaos_orchestration.core.reads import PendingReads
from mlchaos_orchestration.dagster.inmemory import acts_on_load
from mlchaos_orchestration.dagster.request import (
    ORCHESTRATOR,
    ChaosRequest,
    Deployment,
    is_chaos_run,
    resolve,
)


@dataclass(frozen=True)
class ComputeHooks:
    """What the wrappers do, for the Definitions described by ``deployment``."""

    deployment: Deployment

    # ------------------------------------------------------------------ hooks
    def before(self, op: str) -> None:
        """Called as the user's compute of ``op`` starts."""
        ctx = current_context()
        if ctx is None or not is_chaos_run(ctx.run.tags):
            return
        request = self._request(ctx)
        if request is not None:
            observe_roles(request, op, self.deployment, watch=True)

    def end(self, op: str) -> None:
        """Called when the user's compute of ``op`` ended (returned or raised)."""
        flush_watch(op)

    def after(
        self, op: str, result: Any = None, *, generator: bool = False, nothing: bool = False
    ) -> None:
        """Called once the user's compute of ``op`` returned ``result`` (for generators: once
        exhausted, ``result`` = whether an output went to an IO manager). When the IO manager
        will still write an output of the step, the faults land after that write instead
        (:meth:`~.io_manager.ChaosIOManager.handle_output`): a fault applied before it could be
        overwritten by the write."""
        ctx = current_context()
        if ctx is None or not is_chaos_run(ctx.run.tags):
            return
        if bool(result) if generator else io_managed(result, nothing=nothing):
            return
        request = self._request(ctx)
        if request is not None:
            step = StepInfo(
                ctx.run, ctx.instance, ctx.partition_key if ctx.has_partition_key else None
            )
            apply_due_faults(request, op, step, self.deployment)

    def _request(self, ctx: Any) -> ChaosRequest | None:
        return resolve(ctx.run.tags, dagster_run_id=ctx.run_id, deployment=self.deployment)


@dataclass(frozen=True)
class StepInfo:
    """The running step's run, instance and partition key."""

    run: Any
    instance: Any
    partition_key: str | None


def io_managed(result: Any, *, nothing: bool = False) -> bool:
    """Whether Dagster hands ``result`` (what a compute returned) to an IO manager: plain values,
    ``Output``s and an unannotated ``None`` are; ``MaterializeResult`` / ``AssetCheckResult`` /
    ``ObserveResult`` (alone or in a tuple) and ``None`` from an op whose outputs are all
    ``Nothing`` (``-> None``: ``nothing``) are not."""
    import dagster as dg

    if result is None and nothing:
        return False
    results = (dg.MaterializeResult, dg.AssetCheckResult, dg.ObserveResult)
    if isinstance(result, results):
        return False
    if isinstance(result, tuple) and result and all(isinstance(r, results) for r in result):
        return False
    return True


def current_context() -> Any:
    """The OpExecutionContext of the running compute, or None outside one."""
    from dagster._core.execution.context.compute import current_execution_context

    ctx = current_execution_context.get()
    return None if ctx is None else ctx.op_execution_context


def observe_roles(
    request: ChaosRequest, op: str, deployment: Deployment, *, watch: bool = False
) -> None:
    """``observe_read`` for the step ``op`` (role gate, consumer, or - when ``watch`` - task).

    With ``watch`` (the compute wrapper, or the IO manager's first load of a wrapped step) the
    reads are taken now, before the user's code reads, and written when the compute ends only
    if the step was seen READING a target (Linux inotify on local files / SQLite databases, the
    same watch the Airflow adapter uses: :mod:`mlchaos_orchestration.core.reads`): a fault on
    a file the step never reads did not reach it. Other steps (role ``task``) are recorded only
    when seen reading, with ``upstream_of``: the gate / consumer that read what they produce.
    Targets that cannot be watched (S3, server databases, a path that is gone) are recorded at
    start for the gate and the consumer, as observed."""
    from mlchaos_orchestration.core.control import record

    scopes = deployment.scopes
    if scopes is None:
        return
    exp = request.experiment
    gate, consumer = exp.gate or deployment.gate, exp.consumer or deployment.consumer
    roles = [
        (r, n) for r, n in (("gate", gate), ("consumer", consumer)) if n and scopes.op_for(n) == op
    ]
    if not roles and watch:
        roles = [("task", op)]
    for role, name in roles:
        try:
            _observe_one(request, op, name, role, watch, scopes.feeds(op, [gate, consumer]))
        except Exception as exc:  # noqa: BLE001 - recorded: the verdict must not guess
            record(
                request.run_id,
                "error",
                source=op,
                stage="observe_read",
                message=f"{type(exc).__name__}: {str(exc)[:300]}",
            )


def _observe_one(
    request: ChaosRequest, op: str, name: str, role: str, watch: bool, feeds: list[str]
) -> None:
    from mlchaos_orchestration.core.control import observe_read
    from mlchaos_orchestration.core.ledger import Ledger

    if not watch:
        observe_read(request.run_id, name, role)
        return
    if op in _READS:
        return  # already observed as the step loaded its first input
    ledger = Ledger()
    _READS.begin(op, run_id=request.run_id, task=name, role=role, ledger=ledger, upstream_of=feeds)


_READS = PendingReads()


def flush_watch(op: str) -> None:
    """The step ``op`` ended: write its start-time reads if it was seen reading a target."""
    _READS.end(op)


def stored_at(entry: Any) -> bool:
    """A fault that changes stored data / installs hooks and names the step it lands before."""
    return bool(entry.at) and not acts_on_load(entry)


def apply_due_faults(request: ChaosRequest, op: str, ctx: StepInfo, deployment: Deployment) -> None:
    """Apply the stored faults that land once ``op`` (their last producer in this run) is done."""
    from mlchaos_orchestration.core.control import inject, record
    from mlchaos_orchestration.core.ledger import Ledger

    scopes = deployment.scopes
    if scopes is None:
        return
    exp = request.experiment
    due = [
        (i, e)
        for i, e in enumerate(exp.faults)
        if stored_at(e) and op in scopes.producers(e.at) and _last_producer(ctx, op, e, scopes)
    ]
    if not due:
        return
    ledger = Ledger()
    seen = {(e.kind, e.source) for e in ledger.events(request.run_id)}
    ds = _ds(ctx, request, ledger)
    for index, entry in due:
        marker = f"{op} (before {entry.at}) #{index}"
        if ("fault_applied", marker) in seen or ("error", marker) in seen:
            continue  # a retried producer: the fault is already there
        try:
            inject(
                request.run_id,
                exp,
                entry,
                seed=request.seed,
                ds=ds,
                ledger=ledger,
                source=marker,
            )
        except Exception as exc:  # noqa: BLE001 - recorded; the user's step is not failed
            if not any(
                e.kind == "error" and e.source == marker for e in ledger.events(request.run_id)
            ):
                record(
                    request.run_id,
                    "error",
                    source=marker,
                    ledger=ledger,
                    stage="inject",
                    message=f"{type(exc).__name__}: {str(exc)[:300]}",
                )


def _last_producer(ctx: StepInfo, op: str, entry: Any, scopes: Any) -> bool:
    """Whether every other producer of ``entry.at`` planned in this run already succeeded."""
    others = set(scopes.producers(entry.at)) - {op}
    if not others:
        return True
    import dagster as dg

    run = ctx.run
    run_id = run.run_id
    planned: set[str] | None = None
    if run.execution_plan_snapshot_id:
        snap = ctx.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        planned = set(snap.step_keys_to_execute or [])
    done = {
        e.step_key for e in ctx.instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
    }
    return all(o in done or (planned is not None and o not in planned) for o in others)


def _ds(ctx: StepInfo, request: ChaosRequest, ledger: Any) -> str | None:
    if ctx.partition_key:
        return str(ctx.partition_key)[:10]
    meta = (ledger.get_run(request.run_id) or {}).get("meta") or {}
    value = meta.get("ds") or meta.get("partition_key") or ctx.run.tags.get("dagster/partition")
    return str(value)[:10] if value else None


# ---------------------------------------------------------------------- rebuilding assets
def wrap_assets(items: Iterable[Any], hooks: ComputeHooks) -> tuple[list[Any], set[str]]:
    """``items`` with every op-backed AssetsDefinition / AssetChecksDefinition wrapped; the op
    names wrapped."""
    out, wrapped = [], set()
    for item in items:
        new = wrap_one(item, hooks)
        if new is not item:
            wrapped.add(new.op.name)
        out.append(new)
    return out, wrapped


def wrap_one(item: Any, hooks: ComputeHooks) -> Any:
    """``item`` rebuilt with a wrapped compute, or ``item`` itself when it cannot be wrapped."""
    import dagster as dg
    from dagster._core.definitions.decorators.op_decorator import DecoratedOpFunction
    from dagster._core.definitions.op_definition import OpDefinition

    if not isinstance(item, dg.AssetsDefinition) or not item.is_executable:
        return item
    op = item.node_def
    if not isinstance(op, OpDefinition) or not isinstance(op.compute_fn, DecoratedOpFunction):
        return item
    user_fn = op.compute_fn.decorated_fn
    if getattr(user_fn, "__mlchaos_wrapped__", False):
        return item
    new_op = OpDefinition.dagster_internal_init(
        name=op.name,
        ins={d.name: dg.In.from_definition(d) for d in op.input_defs},
        outs={d.name: dg.Out.from_definition(d) for d in op.output_defs},
        compute_fn=DecoratedOpFunction(
            decorated_fn=_wrapped(
                user_fn, op.name, hooks, all(d.dagster_type.is_nothing for d in op.output_defs)
            )
        ),
        config_schema=op.config_schema,
        description=op.description,
        tags=op.tags,
        required_resource_keys=op.required_resource_keys,
        code_version=op.version,
        retry_policy=op.retry_policy,
        version=None,
        pool=op.pool,
    )
    attrs = item.get_attributes_dict()
    attrs["node_def"] = new_op
    if isinstance(item, dg.AssetChecksDefinition):
        import warnings

        with warnings.catch_warnings():  # what Dagster's repository data does for checks
            warnings.simplefilter("ignore", dg.BetaWarning)
            return dg.AssetChecksDefinition(**attrs)
    return dg.AssetsDefinition.dagster_internal_init(**attrs)


def _is_output(item: Any) -> bool:
    import dagster as dg

    return isinstance(item, (dg.Output, dg.DynamicOutput))


def _wrapped(
    user_fn: Callable[..., Any], op: str, hooks: ComputeHooks, nothing: bool = False
) -> Callable[..., Any]:
    """``user_fn`` with ``hooks.before(op)`` / ``hooks.after(op)`` around it (sync, async,
    generator and async generator functions; ``functools.wraps`` keeps the signature Dagster
    reads context / inputs / resources / config from)."""
    wrapped: Callable[..., Any]
    if inspect.isasyncgenfunction(user_fn):

        @functools.wraps(user_fn)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            hooks.before(op)
            to_io = False
            try:
                async for item in user_fn(*args, **kwargs):
                    to_io = to_io or _is_output(item)
                    yield item
            finally:
                hooks.end(op)
            hooks.after(op, to_io, generator=True)

    elif inspect.iscoroutinefunction(user_fn):

        @functools.wraps(user_fn)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            hooks.before(op)
            try:
                result = await user_fn(*args, **kwargs)
            finally:
                hooks.end(op)
            hooks.after(op, result, nothing=nothing)
            return result

    elif inspect.isgeneratorfunction(user_fn):

        @functools.wraps(user_fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            hooks.before(op)
            to_io = False
            try:
                for item in user_fn(*args, **kwargs):
                    to_io = to_io or _is_output(item)
                    yield item
            finally:
                hooks.end(op)
            hooks.after(op, to_io, generator=True)

    else:

        @functools.wraps(user_fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            hooks.before(op)
            try:
                result = user_fn(*args, **kwargs)
            finally:
                hooks.end(op)
            hooks.after(op, result, nothing=nothing)
            return result

    wrapped.__mlchaos_wrapped__ = True  # type: ignore[attr-defined]
    return wrapped


__all__ = ["ORCHESTRATOR", "ComputeHooks", "wrap_assets", "wrap_one"]
