"""mlchaos-orchestration: chaos engineering for ML data pipelines (Airflow and Dagster).

Importing this package is cheap: it imports no pandas, Airflow, Dagster or Great Expectations.
Sub-modules are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Experiment": "mlchaos_orchestration.experiment",
    "ExperimentFile": "mlchaos_orchestration.experiment",
    "load_experiments": "mlchaos_orchestration.experiment",
    "Ledger": "mlchaos_orchestration.ledger",
    "compute_verdict": "mlchaos_orchestration.verdict",
    "get_fault_class": "mlchaos_orchestration.faults",
    "build_fault": "mlchaos_orchestration.faults",
    "MlchaosError": "mlchaos_orchestration.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlchaos_orchestration' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
