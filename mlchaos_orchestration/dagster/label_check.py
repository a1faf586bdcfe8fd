"""The label-integrity check as a Dagster asset check.

``label_integrity_check(features, reference="data/reference/", label="is_fraud")`` loads the
asset's value through its IO manager (so chaos IO managers see the same input as the gate) and
fails, with ERROR severity, when
:func:`~mlchaos_orchestration.gates.label_integrity.check_labels` finds its labels shuffled or
wrong against the reference. Blocking by default: assets downstream are skipped. A missing or
unreadable reference raises (the check's step fails without an evaluation: a crashed gate, not a
detection).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from mlchaos_orchestration.dagster.gate import _signature_with

__all__ = ["label_integrity_check"]


def label_integrity_check(
    asset: dg.AssetsDefinition | dg.AssetKey | str,
    *,
    reference: str | Path | Any,
    label: str,
    features: Sequence[str] | None = None,
    name: str = "label_integrity",
    blocking: bool = True,
    description: str | None = None,
) -> dg.AssetChecksDefinition:
    """An asset check comparing ``asset``'s labels with ``reference``.

    ``reference`` is a path read by
    :func:`~mlchaos_orchestration.gates.label_integrity.read_reference` (file, folder, glob or
    ``s3://`` prefix; ``${VAR}`` expanded when the check runs) or a DataFrame. Partitioned assets
    get the asset's ``partitions_def``.
    """
    key = asset.key if isinstance(asset, dg.AssetsDefinition) else dg.AssetKey.from_coercible(asset)
    partitions_def = asset.partitions_def if isinstance(asset, dg.AssetsDefinition) else None
    wanted = list(features) if features else None

    def _check(context: dg.AssetCheckExecutionContext, *args: Any, **kwargs: Any) -> Any:
        return _evaluate(next(iter([*args, *kwargs.values()])), reference, label, wanted)

    # Dagster loads the checked asset into the parameter named after it: declare that name.
    _check.__signature__ = _signature_with(key.path[-1])  # type: ignore[attr-defined]
    text = description or f"labels in {label!r} consistent with the reference {str(reference)!r}"
    if not isinstance(reference, (str, Path)):
        text = description or f"labels in {label!r} consistent with the reference frame"
    with warnings.catch_warnings():  # partitioned checks are "preview" in 1.13
        warnings.simplefilter("ignore", dg.PreviewWarning)
        decorator = dg.asset_check(
            asset=key, name=name, blocking=blocking, description=text, partitions_def=partitions_def
        )
        return decorator(_check)


def _evaluate(
    frame: Any, reference: Any, label: str, features: list[str] | None
) -> dg.AssetCheckResult:
    from mlchaos_orchestration.errors import SpecError
    from mlchaos_orchestration.gates.label_integrity import (
        check_labels,
        load_reference,
        reference_problems,
    )

    # an unusable reference raises before any evaluation: Dagster fails the check's step, which
    # the ledger records as gate_crashed (dagster/events.py), never as a detection
    if isinstance(reference, (str, Path)):
        ref = load_reference(str(reference), label, features)
    elif problems := reference_problems(reference, label, features):
        raise SpecError([f"reference frame: {p}" for p in problems])
    else:
        ref = reference
    result = check_labels(ref, frame, label, features)
    return dg.AssetCheckResult(
        passed=result.consistent,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.reason[:1000],
        metadata={
            "label": label,
            "probe_score": result.score,
            "expected": result.expected,
            "bound": result.bound,
            "balance_p": result.balance_p,
            "rows": result.rows,
            "features": dg.MetadataValue.json(result.features),
        },
    )
