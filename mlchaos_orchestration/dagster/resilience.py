"""The weekly resilience run: every experiment of a YAML matrix (same format as Airflow) against a
chaos-wrapped asset graph, a clean control run first, verdicts written to the shared ledger."""

import datetime as dt
from collections.abc import Callable
from importlib import import_module
from typing import Any

import dagster as dg

from mlchaos_orchestration.core.experiment import Experiment

DefsSource = Callable[[], dg.Definitions] | str


class ResilienceConfig(dg.Config):
    """``ds``: the partition/run date (default: yesterday, UTC); ``experiments``: names to run
    (default: all)."""

    ds: str = ""
    experiments: list[str] = []


def load_defs(source: DefsSource) -> dg.Definitions:
    """The target Definitions from a factory or a ``module:attribute`` string."""
    if callable(source):
        return source()
    module, _, attr = source.partition(":")
    value = getattr(import_module(module), attr or "defs")
    return value() if callable(value) else value


def matrix(experiments_file: str, names: list[str] | None = None) -> list[Experiment]:
    """The experiments to run, control runs first; a bare control run is added if none."""
    from mlchaos_orchestration.core.experiment import load_experiments, parse_experiment

    exps = load_experiments(experiments_file).experiments
    if names:
        exps = [e for e in exps if e.name in set(names)]
    if not any(e.control for e in exps):
        first = exps[0] if exps else None
        exps.insert(
            0,
            parse_experiment(
                {
                    "name": "control",
                    "control": True,
                    "expect": "clean",
                    "gate": first.gate if first else None,
                    "consumer": first.consumer if first else None,
                }
            ),
        )
    return sorted(exps, key=lambda e: not e.control)


def run_matrix(
    defs: dg.Definitions,
    experiments: list[Experiment],
    *,
    partition_key: str,
    instance: dg.DagsterInstance,
    log: Any = None,
    suite_id: str | None = None,
) -> list[dict[str, Any]]:
    """Run each experiment; one row per experiment with its verdict and expectation."""
    from mlchaos_orchestration.dagster.runner import run_experiment_dagster

    rows = []
    for exp in experiments:
        verdict = run_experiment_dagster(
            defs,
            exp,
            partition_key=partition_key,
            instance=instance,
            pipeline="dagster_resilience",
            suite_id=suite_id,
        )
        row = {
            "experiment": exp.name,
            "verdict": verdict["verdict"],
            "expect": exp.expect,
            "as_expected": exp.expect is None or exp.expect == verdict["verdict"],
            "run_id": verdict["run_id"],
            "reason": verdict.get("reason", ""),
        }
        if log is not None:
            log.info("%s: %s (expected %s)", exp.name, row["verdict"], exp.expect)
        rows.append(row)
    return rows


def resilience_job(
    defs_source: DefsSource, experiments_file: str, *, name: str = "mlchaos_resilience"
) -> dg.JobDefinition:
    """A job whose one op runs the whole matrix and reports the verdicts as output metadata."""

    @dg.op(name=f"{name}_matrix", description="run the chaos experiment matrix")
    def _run_matrix(
        context: dg.OpExecutionContext, config: ResilienceConfig
    ) -> dg.Output[list[dict[str, Any]]]:
        ds = (
            config.ds
            or (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
        )
        rows = run_matrix(
            load_defs(defs_source),
            matrix(experiments_file, config.experiments),
            partition_key=ds,
            instance=context.instance,
            log=context.log,
            suite_id=f"dagster-{context.run_id}",
        )
        surprises = [r["experiment"] for r in rows if not r["as_expected"]]
        return dg.Output(
            rows,
            metadata={
                "ds": ds,
                "experiments": len(rows),
                "unexpected": ", ".join(surprises) or "none",
                "verdicts": dg.MetadataValue.json({r["experiment"]: r["verdict"] for r in rows}),
            },
        )

    @dg.job(name=name, description="mlchaos: weekly resilience matrix with a control run")
    def _job() -> None:
        _run_matrix()

    return _job


def resilience_schedule(
    job: dg.JobDefinition,
    *,
    cron_schedule: str = "0 3 * * 1",
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> dg.ScheduleDefinition:
    """Weekly (Monday 03:00) schedule of the resilience job."""
    return dg.ScheduleDefinition(
        name=f"{job.name}_weekly",
        job=job,
        cron_schedule=cron_schedule,
        default_status=default_status,
    )
