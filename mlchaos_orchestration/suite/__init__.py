"""Running the resilience suite: one worker process per orchestrator (:mod:`.run`, with
:mod:`.airflow_worker` and :mod:`.dagster_worker`) and the demo of the example (:mod:`.demo`)."""

from __future__ import annotations

from mlchaos_orchestration._imports import lazy_exports

_EXPORTS = {"run_suite": "run", "run_plain_demo": "demo"}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
