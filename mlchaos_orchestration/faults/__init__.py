"""Faults: ``registry()`` lists every fault (:mod:`.catalog`); ``build_fault`` validates a spec.

Data faults live in :mod:`.data`, environment faults in :mod:`.environment`.
"""

from __future__ import annotations

from typing import Any

from mlchaos_orchestration.faults.base import (
    ApplyContext,
    DataFault,
    DataFaultResult,
    EnvironmentFault,
    Fault,
)
from mlchaos_orchestration.faults.catalog import get_fault_class, origin, register, registry

__all__ = [
    "ApplyContext",
    "DataFault",
    "DataFaultResult",
    "EnvironmentFault",
    "Fault",
    "build_fault",
    "get_fault_class",
    "origin",
    "register",
    "registry",
]


def build_fault(spec: dict[str, Any]) -> Fault:
    """Validate ``{"fault": name, **params}`` into a fault instance (pydantic errors propagate)."""
    params = dict(spec)
    name = params.pop("fault", None)
    return get_fault_class(name).model_validate(params)
