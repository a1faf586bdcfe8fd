"""A plain Python pipeline: named steps run in order, each fed the outputs of earlier steps.

This is what ``mlchaos run`` drives without an orchestrator; the Airflow and Dagster adapters
map their own tasks/assets onto the same events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    """One step: ``fn(**{name: output of step name for name in inputs})``."""

    name: str
    fn: Callable[..., Any]
    inputs: tuple[str, ...] = ()


@dataclass
class Pipeline:
    """Ordered steps plus the default gate and consumer step names."""

    name: str
    steps: list[Step]
    gate: str | None = None
    consumer: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for step in self.steps:
            missing = [i for i in step.inputs if i not in seen]
            if missing:
                raise ValueError(f"step {step.name!r} needs {missing} before it")
            seen.add(step.name)

    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]


def load_pipeline(ref: str) -> Pipeline:
    """Import ``module:attribute`` (a Pipeline, or a zero-argument factory returning one)."""
    import importlib

    from mlchaos_orchestration.errors import SpecError

    if ":" not in ref:
        raise SpecError([f"pipeline: {ref!r} must look like 'package.module:attribute'"])
    module_name, attr = ref.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError([f"pipeline: cannot import {module_name!r}: {exc}"]) from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise SpecError([f"pipeline: {module_name!r} has no attribute {attr!r}"])
    if callable(obj) and not isinstance(obj, Pipeline):
        obj = obj()
    if not isinstance(obj, Pipeline):
        raise SpecError([f"pipeline: {ref!r} is not a Pipeline"])
    return obj
