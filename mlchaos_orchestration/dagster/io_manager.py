"""``ChaosIOManager``: wraps a run's IO manager and delegates to it; in a chaos run it

* applies data faults (and ``at``-scoped outages / stale replays) to frames as they are loaded,
  seeded by the run (:func:`~mlchaos_orchestration.core.control.seed_for`), recording
  ``fault_applied``;
* installs the in-process hooks of the run's active leases (``connector_failure``, erroring
  outages) around every inner ``load_input`` / ``handle_output`` - the window in which an asset
  reads or writes through the wrapped IO manager - and removes them afterwards;
* for gate / consumer steps whose compute is not wrapped (graph-backed assets, see
  :mod:`.compute`), calls ``control.observe_read`` as the step loads its first input.

An in-memory data fault records ``site`` (the step that loaded the faulted value and the input
name) and ``rows_changed``: it reached that step by construction. An in-memory outage raises the
client's own error type (:mod:`.inmemory`).

Dormant runs (no chaos tags, see :mod:`.request`) only delegate.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import dagster as dg

from mlchaos_orchestration.dagster.inmemory import (
    acts_on_load,
    apply_data_fault,
    apply_outage,
    shifted_partition,
)
from mlchaos_orchestration.dagster.request import ChaosRequest, Deployment, resolve
from mlchaos_orchestration.dagster.scope import LoadSite, Scopes

INNER_SUFFIX = "__mlchaos_inner"


class ChaosIOManager(dg.IOManager):
    """Delegating IO manager that injects the run's faults on load (see module docstring)."""

    def __init__(
        self,
        inner: dg.IOManager,
        request: ChaosRequest | None,
        scopes: Scopes,
        deployment: Deployment | None = None,
        wrapped_ops: frozenset[str] | set[str] = frozenset(),
    ):
        self.inner = inner
        self.request = request
        self.scopes = scopes
        self.deployment = deployment
        self.wrapped_ops = frozenset(wrapped_ops)
        self._observed: set[str] = set()

    # ------------------------------------------------------------------ IOManager
    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        with self._hooks():
            self.inner.handle_output(context, obj)
        if self.request is not None and self.deployment is not None and context.op_def:
            from mlchaos_orchestration.dagster.compute import StepInfo, apply_due_faults

            step = context.step_context
            key = context.partition_key if context.has_partition_key else None
            info = StepInfo(step.dagster_run, step.instance, key)
            apply_due_faults(self.request, context.op_def.name, info, self.deployment)

    def load_input(self, context: dg.InputContext) -> Any:
        if self.request is None or not context.has_asset_key:
            with self._hooks():
                return self.inner.load_input(context)
        site = LoadSite(
            context.asset_key.to_user_string(), context.op_def.name if context.op_def else ""
        )
        self._observe(site.loading_op)
        ds = context.partition_key[:10] if context.has_partition_key else None
        entries = [
            e
            for e in self.request.experiment.faults
            if acts_on_load(e) and self.scopes.matches(e.at, site)
        ]
        stale = next((e for e in entries if e.fault.name == "stale_partition_replay"), None)
        try:
            with self._hooks():
                value = self._load(context, stale, site)
        except BaseException:
            _flush(site.loading_op)  # compute will not run: record what the step tried to read
            raise
        for entry in entries:
            value = self._apply(entry, value, site, context.name, ds)
        return value

    # ------------------------------------------------------------------ helpers
    def _load(self, context: dg.InputContext, stale: Any, site: LoadSite) -> Any:
        if stale is None or not context.has_partition_key:
            return self.inner.load_input(context)
        old = shifted_partition(context.partition_key, int(stale.fault.lag_days))
        value = self.inner.load_input(_context_for_partition(context, old))
        self._record(stale, site, {"ds": context.partition_key, "replayed_ds": old}, context.name)
        return value

    def _apply(
        self, entry: Any, value: Any, site: LoadSite, input_name: str, ds: str | None
    ) -> Any:
        assert self.request is not None
        name = entry.fault.name
        if entry.fault.family == "data":
            value, data = apply_data_fault(entry, value, self.request.seed)
        elif name == "upstream_outage":
            try:
                value, data = apply_outage(entry, value, site.loaded_asset, ds)
            except Exception as exc:
                self._record(
                    entry,
                    site,
                    {"mode": entry.fault.mode, "raised": type(exc).__name__},
                    input_name,
                )
                raise
        else:
            return value
        self._record(entry, site, data, input_name)
        return value

    def _record(self, entry: Any, site: LoadSite, details: dict[str, Any], input_name: str) -> None:
        from mlchaos_orchestration.core.control import record

        assert self.request is not None
        extra: dict[str, Any] = {}
        if "rows_changed" in details:
            extra["rows_changed"] = int(details["rows_changed"])
        record(
            self.request.run_id,
            "fault_applied",
            source=site.loading_op,
            fault=entry.fault.name,
            at=entry.at,
            asset=site.loaded_asset,
            params=entry.fault.spec(),
            seed=self.request.seed,
            details=details,
            site={"step": site.loading_op, "input": input_name},
            **extra,
        )

    def _observe(self, op: str) -> None:
        """observe_read for a gate / consumer step as it loads its first input (wrapped steps:
        the reads are recorded when the compute ends, for the targets the step opened)."""
        from mlchaos_orchestration.dagster.compute import observe_roles

        if self.request is None or self.deployment is None or op in self._observed:
            return
        self._observed.add(op)
        observe_roles(self.request, op, self.deployment, watch=op in self.wrapped_ops)

    def _hooks(self) -> Any:
        if self.request is None:
            return nullcontext()
        return _installed_for(self.request.run_id)


def _flush(op: str) -> None:
    from mlchaos_orchestration.dagster.compute import flush_watch

    flush_watch(op)


@contextmanager
def _installed_for(run_id: str) -> Iterator[None]:
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.interceptors.ledger_sync import LedgerHooks

    with LedgerHooks(Ledger(), run_id=run_id):  # follows the lease: abort removes the hook
        yield


def _context_for_partition(context: dg.InputContext, partition_key: str) -> dg.InputContext:
    """A copy of ``context`` that loads another partition of the same asset."""
    upstream = dg.build_output_context(
        asset_key=context.asset_key, partition_key=partition_key, name="result"
    )
    return dg.build_input_context(
        name=context.name,
        asset_key=context.asset_key,
        partition_key=partition_key,
        asset_partitions_def=context.asset_partitions_def,
        upstream_output=upstream,
        dagster_type=context.dagster_type,
        instance=context.instance,
        definition_metadata=context.definition_metadata,
    )


def chaos_io_manager(
    inner_key: str, deployment: Deployment, wrapped_ops: set[str] | frozenset[str] = frozenset()
) -> dg.IOManagerDefinition:
    """An IO manager resource wrapping the resource at ``inner_key`` for each run."""
    scopes = deployment.scopes or Scopes()

    @dg.io_manager(
        required_resource_keys={inner_key},
        description=f"mlchaos chaos wrapper around {inner_key!r}",
    )
    def _chaos(init_context: dg.InitResourceContext) -> ChaosIOManager:
        from mlchaos_orchestration.core.session import recover

        inner = getattr(init_context.resources, inner_key)
        run = init_context.dagster_run
        request = None
        if run is not None:
            request = resolve(run.tags, dagster_run_id=run.run_id, deployment=deployment)
        if request is not None:
            recover()
        return ChaosIOManager(inner, request, scopes, deployment, wrapped_ops)

    return _chaos


def is_io_manager(value: Any) -> bool:
    """Whether a Definitions resource value is an IO manager (definition or instance)."""
    return isinstance(
        value, (dg.IOManagerDefinition, dg.ConfigurableIOManagerFactory, dg.IOManager)
    )
