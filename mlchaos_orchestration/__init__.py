"""mlchaos-orchestration: chaos engineering for ML data pipelines (Airflow and Dagster).

The stable public API is re-exported here, lazily: importing this package imports no pandas,
Airflow, Dagster or Great Expectations; each name loads its module on first use.

    from mlchaos_orchestration import parse_experiment, load_experiments, build_fault, Ledger

The Airflow and Dagster APIs live in :mod:`mlchaos_orchestration.airflow` and
:mod:`mlchaos_orchestration.dagster`.
"""

from __future__ import annotations

from mlchaos_orchestration._imports import install_moved_finder, lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Experiment": "core.experiment",
    "ExperimentFile": "core.experiment",
    "parse_experiment": "core.experiment",
    "load_experiments": "core.experiment",
    "Ledger": "core.ledger",
    "compute_verdict": "core.verdict",
    "build_fault": "faults",
    "get_fault_class": "faults",
    "registry": "faults",
    "MlchaosError": "errors",
    "SpecError": "errors",
    "SafetyError": "errors",
    "get_settings": "settings",
    "Settings": "settings",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
install_moved_finder()
