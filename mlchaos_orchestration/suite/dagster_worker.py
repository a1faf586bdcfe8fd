"""The Dagster side of ``mlchaos suite``: one experiment on the example Definitions."""

from __future__ import annotations

from typing import Any


def run_one(exp: Any, *, suite_id: str, config: Any) -> dict[str, Any]:
    """Run ``exp`` on the example ``dagster_defs`` pipeline (config from the worker's env)."""
    from mlchaos_orchestration.dagster.runner import run_experiment_dagster
    from mlchaos_orchestration.examples.definitions import chaos_pipeline_defs

    return run_experiment_dagster(
        chaos_pipeline_defs(),
        exp,
        partition_key=config.ds,
        ds=config.ds,
        pipeline="feature_pipeline",
        suite_id=suite_id,
    )
