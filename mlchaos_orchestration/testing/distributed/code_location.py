"""The Dagster code location ``dagster-daemon`` loads in ``make distributed``: the example
pipeline with chaos (alert + verdict sensors), a multiprocess asset job whose schedule requests one
run per experiment of the example matrix, launched by tag (``mlchaos/experiment``, as the UI
launchpad does), and the weekly resilience schedule (on a small experiments file, firing once).
Configured by the environment only."""

from __future__ import annotations

import os

import dagster as dg  # noqa: TID253 - a code location: only loaded where Dagster runs

from mlchaos_orchestration.dagster import weekly_resilience
from mlchaos_orchestration.dagster.request import TAG_EXPERIMENT
from mlchaos_orchestration.examples.definitions import chaos_pipeline_defs
from mlchaos_orchestration.testing.distributed.dagster_daemon import WEEKLY
from mlchaos_orchestration.testing.distributed.matrix_job import MATRIX_JOB, matrix_job

TAG_MATRIX = "mlchaos/distributed"
#: imported once by the forkserver the matrix runs' step processes fork from
PRELOAD = ("pandas", "mlchaos_orchestration.testing.distributed.code_location")


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
    job = matrix_job(chaos, exclude=dg.AssetSelection.assets(weekly.asset), preload=PRELOAD)
    mark = os.environ.get("MLCHAOS_DISTRIBUTED_STACK", "")

    @dg.schedule(
        cron_schedule="* * * * *",
        job=job,
        name=f"{MATRIX_JOB}_schedule",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def _matrix(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        # once; the run queue runs one at a time (the matrix and the weekly run share the data,
        # each chaos run restores its faults when its last step finished)
        mine = dg.RunsFilter(job_name=MATRIX_JOB, tags={TAG_MATRIX: mark})
        if context.instance.get_runs_count(mine):
            return dg.SkipReason("the matrix runs were already launched")
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
