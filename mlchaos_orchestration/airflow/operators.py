"""Chaos operators: thin translations of a task context into
:mod:`mlchaos_orchestration.core.control`.

Dormant runs (no ``mlchaos`` key in ``dag_run.conf``): injection operators succeed doing nothing
(logging "dormant"), so the user's tasks downstream of them still run under ``all_success``;
restore and verdict operators, which have no user task downstream, end *skipped* (``add_chaos``
makes them teardowns, which do not count for the run's state).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlchaos_orchestration.airflow.runtime import (
    CONF_KEY,
    FAIL_ON,
    default_experiment,
    inject_point,
)

__all__ = [
    "FAIL_ON",
    "ChaosInjectOperator",
    "ConnectorFailureOperator",
    "DataFaultOperator",
    "RestoreOperator",
    "StalePartitionReplayOperator",
    "UpstreamOutageOperator",
    "VerdictOperator",
]


class ChaosInjectOperator(BaseOperator):
    """Begin the chaos run and apply the requested experiment's faults of this ``stage``.

    ``stage="environment"`` applies environment faults, ``"data"`` applies data faults to the data
    stored at ``entry.target`` (or ``data_target``, a target or a no-argument callable returning
    one, so secrets in URLs stay out of the DAG; ``{ds}`` is the run date), ``"all"`` both.
    The experiment comes from ``dag_run.conf["mlchaos"]`` or, when the request names none, from
    ``experiment`` / ``experiments_file`` / ``fault`` + ``fault_params`` given here.

    Under ``add_chaos`` each inject task serves one point of the graph: ``at=None`` is the setup
    inject (environment faults, data faults without a later point), ``at="<task>"`` applies the
    data faults whose ``at:`` (or the default gate) is that task.
    """

    ui_color = "#f6d5d5"
    fault_names: ClassVar[frozenset[str] | None] = None  # None: any fault of the stage
    fault_name: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        experiment: str | dict[str, Any] | None = None,
        experiments_file: str | None = None,
        fault: str | None = None,
        fault_params: dict[str, Any] | None = None,
        stage: str = "all",
        gate: str | None = None,
        consumer: str | None = None,
        data_target: str | dict[str, Any] | None = None,
        mlchaos_defaults: dict[str, Any] | None = None,
        at: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.at = at
        if stage not in ("environment", "data", "all"):
            raise ValueError(f"stage must be environment, data or all, got {stage!r}")
        self.stage = stage
        fault = fault or self.fault_name
        if mlchaos_defaults is None:
            mlchaos_defaults = {
                "gate": gate,
                "consumer": consumer,
                "data_target": data_target,
                "experiments_file": experiments_file,
            }
            if experiment is None and fault:
                experiment = default_experiment(
                    f"{self.dag_id or 'dag'}.{self.task_id}",
                    fault,
                    dict(fault_params or {}),
                    gate=gate,
                    consumer=consumer,
                )
            mlchaos_defaults["experiment"] = experiment
        self.mlchaos_defaults = {k: v for k, v in mlchaos_defaults.items() if v is not None}

    def wanted(self, entry: Any) -> bool:
        """Whether this operator applies ``entry`` (by stage and fault name)."""
        family = entry.fault.family
        if self.stage != "all" and family != self.stage:
            return False
        if self.fault_names is not None and entry.name not in self.fault_names:
            return False
        if str(entry.target or "").startswith("xcom://"):
            return False  # applied as the value is pulled (airflow/xcom_backend.py)
        if "inject_at" in self.mlchaos_defaults:  # one of add_chaos's inject points
            return inject_point(entry, self.mlchaos_defaults) == self.at
        return True

    def execute(self, context: Any) -> dict[str, Any]:
        from mlchaos_orchestration.airflow.context import chaos_run, run_date
        from mlchaos_orchestration.core import control

        run = chaos_run(context, self.mlchaos_defaults)
        if run is None:
            self.log.info("mlchaos: dormant (no %r in dag_run.conf): touching nothing", CONF_KEY)
            return {"dormant": True}
        run_id = control.begin_run(
            run.experiment,
            run_key=run.run_key,
            orchestrator="airflow",
            pipeline=run.pipeline,
            suite_id=run.suite_id,
        )
        ds = run_date(context)
        applied: list[Any] = []
        for entry in (e for e in run.experiment.faults if self.wanted(e)):
            target = entry.target
            if entry.fault.family == "data" and target is None:
                target = self.mlchaos_defaults.get("data_target")
                target = target() if callable(target) else target
            outcome = control.inject(
                run_id,
                run.experiment,
                entry,
                seed=run.seed,
                ds=ds,
                target=target,
                dry_run=run.dry_run,
                source=self.task_id,
            )
            if run.dry_run:
                self.log.info("mlchaos dry run, would apply: %s", "; ".join(outcome))
                applied.append({"fault": entry.name, "plan": outcome})
            else:
                self.log.info("mlchaos: applied %s (lease %s)", entry.name, outcome.lease.id)
                applied.append({"fault": entry.name, "lease": outcome.lease.id})
        return {"run_id": run_id, "experiment": run.experiment.name, "applied": applied}


class UpstreamOutageOperator(ChaosInjectOperator):
    """Make an upstream source missing / empty / truncated / late / erroring."""

    fault_name = "upstream_outage"
    fault_names = frozenset({"upstream_outage"})

    def __init__(self, *, target: str | None = None, mode: str = "missing", **kwargs: Any):
        params = {"target": target, "mode": mode} if target else None
        super().__init__(fault_params=kwargs.pop("fault_params", params), **kwargs)


class StalePartitionReplayOperator(ChaosInjectOperator):
    """Serve an older partition's content as the run date's partition."""

    fault_name = "stale_partition_replay"
    fault_names = frozenset({"stale_partition_replay"})

    def __init__(self, *, template: str | None = None, lag_days: int = 1, **kwargs: Any):
        params = {"template": template, "lag_days": lag_days} if template else None
        super().__init__(fault_params=kwargs.pop("fault_params", params), **kwargs)


class ConnectorFailureOperator(ChaosInjectOperator):
    """Make a share of a database's (or an S3 prefix's) calls fail inside the reading tasks."""

    fault_name = "connector_failure"
    fault_names = frozenset({"connector_failure"})

    def __init__(
        self, *, url: str | None = None, s3: str | None = None, rate: float = 0.5, **kwargs: Any
    ):
        where = {"url": url} if url else {"s3": s3} if s3 else None
        params = {**where, "rate": rate} if where else None
        super().__init__(fault_params=kwargs.pop("fault_params", params), **kwargs)


class DataFaultOperator(ChaosInjectOperator):
    """Apply a data fault to stored data, e.g.
    ``DataFaultOperator(fault="nulls", fault_params={"columns": ["amount"], "fraction": 0.2},
    target={"url": ..., "table": "features", "where": {"ds": "{ds}"}})``."""

    def __init__(
        self, *, fault: str | None = None, target: str | dict[str, Any] | None = None, **kwargs: Any
    ):
        super().__init__(fault=fault, stage="data", data_target=target, **kwargs)


class RestoreOperator(BaseOperator):
    """Restore every fault of the chaos run (byte-exact) and compute its verdict.

    Runs whatever happened upstream (trigger rule ``all_done``); skipped on dormant runs.
    """

    ui_color = "#d5f6dc"

    def __init__(self, *, mlchaos_defaults: dict[str, Any] | None = None, **kwargs: Any):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.mlchaos_defaults = dict(mlchaos_defaults or {})

    def execute(self, context: Any) -> dict[str, Any]:
        from mlchaos_orchestration.core import control

        run = _active_run(context, self.mlchaos_defaults)
        verdict = control.finish(run.run_id)
        self.log.info(
            "mlchaos: restored run %s; verdict %s (%s)",
            run.run_id,
            verdict.get("verdict"),
            verdict.get("reason"),
        )
        return verdict


class VerdictOperator(BaseOperator):
    """Read the run's verdict from the ledger; fail (red) when it is in ``fail_on``."""

    ui_color = "#d5e4f6"

    def __init__(
        self,
        *,
        fail_on: Iterable[str] = FAIL_ON,
        mlchaos_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.fail_on: Sequence[str] = tuple(fail_on)
        self.mlchaos_defaults = dict(mlchaos_defaults or {})

    def execute(self, context: Any) -> dict[str, Any]:
        from mlchaos_orchestration.core.ledger import Ledger

        run = _active_run(context, self.mlchaos_defaults)
        record = Ledger().get_run(run.run_id) or {}
        verdict = record.get("verdict_detail")
        if not verdict:
            raise AirflowFailException(f"mlchaos: run {run.run_id} has no verdict (not restored?)")
        kind = verdict.get("verdict")
        self.log.info(
            "mlchaos verdict of %s: %s - %s", run.experiment.name, kind, verdict.get("reason")
        )
        if kind in self.fail_on:
            raise AirflowFailException(
                f"mlchaos verdict {kind!r} for {run.experiment.name}: {verdict.get('reason')}"
            )
        return verdict


def _active_run(context: Any, defaults: dict[str, Any]) -> Any:
    from mlchaos_orchestration.airflow.context import chaos_run

    run = chaos_run(context, defaults or None)
    if run is None:
        raise AirflowSkipException("mlchaos: dormant run, nothing to do")
    return run
