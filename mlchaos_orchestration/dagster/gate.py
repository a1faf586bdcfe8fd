"""A GX 1.x suite as a blocking, ERROR-severity Dagster asset check (the gate).

A failing blocking check fails its step, so assets downstream of the checked asset are skipped;
the checked asset itself is already materialized when the check runs (the verdict reads the check
evaluation, not the asset). Suites are :mod:`mlchaos_orchestration.gates.gx` specs
(YAML / GX export).
"""

import inspect
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

FrameLoader = Callable[[dg.AssetCheckExecutionContext], Any]


def gx_blocking_check(
    asset: dg.AssetsDefinition | dg.AssetKey | str,
    suite: str | Path | dict,
    *,
    name: str = "gx_gate",
    load_frame: FrameLoader | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    description: str | None = None,
) -> dg.AssetChecksDefinition:
    """A blocking check that validates ``asset`` against the GX ``suite``.

    The frame comes from ``load_frame(context)`` when given, else the asset's value is loaded
    through its IO manager (so chaos IO managers see the gate's input). Partitioned assets get
    the asset's ``partitions_def`` unless one is given.
    """
    from mlchaos_orchestration.gates.gx import load_suite_specs

    spec = load_suite_specs(suite)
    if partitions_def is None and isinstance(asset, dg.AssetsDefinition):
        partitions_def = asset.partitions_def
    key = asset.key if isinstance(asset, dg.AssetsDefinition) else dg.AssetKey.from_coercible(asset)
    text = description or f"GX suite {spec.name!r} ({len(spec.expectations)} expectations)"
    with warnings.catch_warnings():  # partitioned checks are "preview" in 1.13, and required
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _build(key, spec, name, text, partitions_def, load_frame)


def _build(
    key: dg.AssetKey,
    spec: Any,
    name: str,
    text: str,
    partitions_def: dg.PartitionsDefinition | None,
    load_frame: FrameLoader | None,
) -> dg.AssetChecksDefinition:
    decorator = dg.asset_check(
        asset=key, name=name, blocking=True, description=text, partitions_def=partitions_def
    )

    if load_frame is not None:

        @decorator
        def _loaded_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
            return _evaluate(load_frame(context), spec)

        return _loaded_check

    def _input_check(
        context: dg.AssetCheckExecutionContext, *args: Any, **kwargs: Any
    ) -> dg.AssetCheckResult:
        return _evaluate(next(iter([*args, *kwargs.values()])), spec)

    # Dagster loads the checked asset into the parameter named after it: declare that name.
    _input_check.__signature__ = _signature_with(key.path[-1])  # type: ignore[attr-defined]
    return decorator(_input_check)


def _signature_with(param: str) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature([inspect.Parameter("context", kind), inspect.Parameter(param, kind)])


def _evaluate(frame: Any, spec: Any) -> dg.AssetCheckResult:
    from mlchaos_orchestration.gates.gx import validate_frame

    result = validate_frame(frame, spec)
    return dg.AssetCheckResult(
        passed=result.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.summary()[:1000],
        metadata={
            "suite": result.suite,
            "evaluated": result.evaluated,
            "rows": result.rows,
            "failed": len(result.failed),
            "failed_expectations": dg.MetadataValue.json(
                [
                    f"{f.get('expectation', '?')}({f.get('column') or ''})"
                    for f in result.failed[:50]
                ]
            ),
            "duration_s": result.duration_s,
        },
    )
