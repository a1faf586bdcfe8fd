"""Row faults that grow the data: duplicated records."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mlchaos_orchestration.faults.base import DataFaultResult
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.faults.data.common import VectorDataFault, append_rows

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd


@register
class DuplicateRows(VectorDataFault):
    """Append exact copies of a sampled fraction of rows at the end (the frame grows).

    ``result.rows`` are the duplicated source positions. A default RangeIndex is renumbered;
    any other index repeats the duplicated labels.
    """

    name: ClassVar[str] = "duplicate_rows"

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        rows = self.sample_rows(len(frame), rng)
        return DataFaultResult(append_rows(frame, rows), rows, list(frame.columns))
