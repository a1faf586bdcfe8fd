"""Dagster adapter: chaos on existing asset graphs, blocking GX checks, alerting, resilience job.

Public names are loaded lazily, so ``import mlchaos_orchestration.dagster`` imports neither Dagster
nor Airflow; Dagster is imported on first use of a name that needs it.

Usage::

    check = gx_blocking_check(features, "gate_suite.yaml", name="validate_features")
    defs = with_chaos(Definitions(assets=[...], asset_checks=[check], resources={...}),
                      experiments_file="experiments.yaml", gate="validate_features",
                      consumer="train_model")
    verdict = run_experiment_dagster(defs, load_experiments("experiments.yaml").get("nulls"),
                                     partition_key="2026-11-20")
    # or launch a run with the tag mlchaos/experiment=nulls (the sensors finish it)
    # weekly: Definitions.merge(defs, weekly_resilience(defs, "experiments.yaml").defs)

A stored fault's ``at`` names the step BEFORE which it lands: it is applied in the producing
step right after the user's compute returned (for a check name: after the checked asset), so an
asset that writes its own file and the blocking check reading it are really tested.
"""

from __future__ import annotations

from mlchaos_orchestration._imports import lazy_exports

_EXPORTS = {
    "TAG_EXPERIMENT": ".request",
    "TAG_RUN_ID": ".request",
    "TAG_EXPERIMENTS_FILE": ".request",
    "TAG_EXPERIMENT_SPEC": ".request",
    "ChaosRequest": ".request",
    "ChaosIOManager": ".io_manager",
    "gx_blocking_check": ".gate",
    "translate_run": ".events",
    "chaos_alert_sensor": ".alerting",
    "deliver_alert": ".alerting",
    "chaos_success_sensor": ".finishing",
    "finish_tagged_run": ".finishing",
    "run_experiment_dagster": ".runner",
    "with_chaos": ".wrap",
    "chaos_executor_for": ".executor",
    "resilience_job": ".resilience",
    "resilience_schedule": ".resilience",
    "weekly_resilience": ".resilience",
    "MlchaosResource": ".resource",
    "tag_verdict": ".finishing",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
