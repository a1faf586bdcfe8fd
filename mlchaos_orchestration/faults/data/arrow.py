"""Apply a data fault to a ``pyarrow.Table`` by way of pandas (zero-copy where Arrow allows)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

    from mlchaos_orchestration.faults.base import DataFault, DataFaultResult


def apply_to_arrow(
    fault: DataFault, table: pa.Table, seed: int
) -> tuple[pa.Table, DataFaultResult]:
    """Fault ``table`` and return the faulted table with the fault's result.

    Conversion keeps one block per column (no consolidation copy), so numeric columns without
    nulls cross both ways without copying. Arrow cannot hold a mixed-type column: a changed
    ``object`` column (``type_flip``) comes back as a string column (missing values stay
    missing). The pandas index is dropped.
    """
    import pyarrow as pa

    frame = table.to_pandas(split_blocks=True)
    result = fault.apply(frame, seed)
    out = result.frame
    mixed = {c: as_text(out[c]) for c in result.columns if c in out and out[c].dtype == object}
    if mixed:
        out = out.assign(**mixed)
    return pa.Table.from_pandas(out, preserve_index=False), result


def as_text(column: pd.Series) -> pd.Series:
    """``column`` as strings (``str()`` of each value), missing values kept missing."""
    missing = column.isna()
    return column.astype(str).where(~missing, None)
