"""Airflow 3 adapter: chaos operators, ``add_chaos``, the GX gate operator, the webhook notifier.

Imports are lazy (PEP 562): ``import mlchaos_orchestration.airflow`` loads neither Airflow,
pandas, Great Expectations nor Dagster; each name is imported on first use.
"""

from __future__ import annotations

from mlchaos_orchestration._imports import lazy_exports

_EXPORTS = {
    "add_chaos": "group",
    "ChaosInjectOperator": "operators",
    "UpstreamOutageOperator": "operators",
    "StalePartitionReplayOperator": "operators",
    "ConnectorFailureOperator": "operators",
    "DataFaultOperator": "operators",
    "RestoreOperator": "operators",
    "VerdictOperator": "operators",
    "GreatExpectationsGateOperator": "gate",
    "MlchaosWebhookNotifier": "notifier",
    "experiment_params": "params",
    "params_to_experiment": "params",
    "CONF_KEY": "runtime",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
