"""The example Definitions with chaos, the alert sensor and the weekly resilience schedule."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from mlchaos_orchestration.dagster import resilience_job, resilience_schedule, with_chaos
from mlchaos_orchestration.examples.assets import build_pipeline_defs
from mlchaos_orchestration.examples.locations import ExampleConfig

EXPERIMENTS_FILE = str(Path(__file__).with_name("experiments.yaml"))
GATE = "validate_features"
CONSUMER = "train_model"


def chaos_pipeline_defs() -> dg.Definitions:
    """The example pipeline wrapped by :func:`with_chaos` (dormant unless a run asks)."""
    config = ExampleConfig.from_env()
    for key, value in config.export().items():  # ${VAR}s of experiments.yaml, step processes
        os.environ.setdefault(key, value)
    return with_chaos(
        build_pipeline_defs(config),
        experiments_file=EXPERIMENTS_FILE,
        gate=GATE,
        consumer=CONSUMER,
        pipeline="dagster_defs",
    )


def build_defs() -> dg.Definitions:
    """Pipeline + chaos + the resilience job and its weekly schedule."""
    job = resilience_job(
        "mlchaos_orchestration.examples.definitions:chaos_pipeline_defs", EXPERIMENTS_FILE
    )
    return dg.Definitions.merge(
        chaos_pipeline_defs(), dg.Definitions(jobs=[job], schedules=[resilience_schedule(job)])
    )
