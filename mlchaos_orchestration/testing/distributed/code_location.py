"""The Dagster code location ``dagster-daemon`` loads in ``make distributed``: the example
pipeline with chaos (alert + verdict sensors), a multiprocess asset job whose schedule requests one
tagged run per experiment of the example matrix, and the weekly resilience schedule (on a small
experiments file, firing once). Configured by the environment only."""

from __future__ import annotations

import os

import dagster as dg  # noqa: TID253 - a code location: only loaded where Dagster runs

from mlchaos_orchestration.dagster import weekly_resilience
from mlchaos_orchestration.dagster.request import TAG_EXPERIMENT
from mlchaos_orchestration.examples.definitions import chaos_pipeline_defs
from mlchaos_orchestration.testing.distributed.dagster_daemon import MATRIX_JOB, WEEKLY

TAG_MATRIX = "mlchaos/distributed"


def _names() -> list[str]:
    return [n for n in os.environ.get("MLCHAOS_DISTRIBUTED_EXPERIMENTS", "").split(",") if n]


def build() -> dg.Definitions:
    chaos = chaos_pipeline_defs()
    weekly = weekly_resilience(
        "mlchaos_orchestration.examples.definitions:chaos_pipeline_defs",
        os.environ["MLCHAOS_WEEKLY_EXPERIMENTS"],
        # the real weekly schedule, its cron set to fire once, a minute after start-up
        cron_schedule=os.environ.get("MLCHAOS_WEEKLY_CRON", "@weekly"),
        name=WEEKLY,
    )
    job = dg.define_asset_job(
        MATRIX_JOB,
        selection=dg.AssetSelection.all() - dg.AssetSelection.assets(weekly.asset),
        executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2}),
    )
    mark = os.environ.get("MLCHAOS_DISTRIBUTED_STACK", "")

    @dg.schedule(
        cron_schedule="* * * * *",
        job=job,
        name=f"{MATRIX_JOB}_schedule",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def _matrix(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        # once, after the weekly run: both use the same data, one experiment at a time
        weekly_done = dg.RunsFilter(job_name=WEEKLY, statuses=[dg.DagsterRunStatus.SUCCESS])
        mine = dg.RunsFilter(job_name=MATRIX_JOB, tags={TAG_MATRIX: mark})
        instance = context.instance
        if not instance.get_runs_count(weekly_done) or instance.get_runs_count(mine):
            return dg.SkipReason("waiting for the weekly run, or already launched")
        ds = os.environ["MLCHAOS_DS"]
        return [
            dg.RunRequest(
                run_key=f"{name}:{ds}:{mark}",
                partition_key=ds,
                tags={TAG_EXPERIMENT: name, TAG_MATRIX: mark},
            )
            for name in _names()
        ]

    return dg.Definitions.merge(chaos, weekly.defs, dg.Definitions(jobs=[job], schedules=[_matrix]))


defs = build()
