"""Airflow 3 adapter: chaos operators, ``add_chaos``, the GX gate operator, the webhook notifier.

Imports are lazy (PEP 562): ``import mlchaos_orchestration.airflow`` loads neither Airflow,
pandas, Great Expectations nor Dagster; each name is imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
