"""Schema faults: remove or rename columns. They touch no cell, so ``result.rows`` is empty; every
row of the data is reshaped, so ``result.rows_changed`` is the row count."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, model_validator

from mlchaos_orchestration.faults.base import DataFaultResult
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.faults.data.common import ColumnsFault, VectorDataFault, fail

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd


def _no_rows() -> np.ndarray:
    import numpy as np

    return np.empty(0, dtype=np.int64)


@register
class DropColumn(ColumnsFault):
    """Remove columns from the data (fraction and max_rows are ignored)."""

    name: ClassVar[str] = "drop_column"

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        return DataFaultResult(
            frame.drop(columns=self.columns),
            _no_rows(),
            list(self.columns),
            rows_affected=len(frame),
        )


@register
class RenameColumn(VectorDataFault):
    """Rename columns, by ``mapping`` old -> new or ``columns`` + ``suffix`` (fraction ignored)."""

    name: ClassVar[str] = "rename_column"

    mapping: dict[str, str] | None = Field(None, description="old name -> new name")
    columns: list[str] | None = Field(None, min_length=1, description="columns to rename")
    suffix: str = Field("_renamed", min_length=1, description="appended to each of columns")

    @model_validator(mode="after")
    def _one_way(self) -> RenameColumn:
        if (self.mapping is None) == (self.columns is None):
            raise ValueError("give exactly one of mapping or columns")
        if self.mapping is not None and not self.mapping:
            raise ValueError("mapping must not be empty")
        return self

    def renames(self) -> dict[str, str]:
        """The effective old -> new mapping."""
        if self.mapping is not None:
            return dict(self.mapping)
        return {c: f"{c}{self.suffix}" for c in self.columns or []}

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        mapping = self.renames()
        missing = [c for c in mapping if c not in frame.columns]
        if missing:
            raise fail(self, f"column(s) not in data: {', '.join(missing)}")
        final = [mapping.get(c, c) for c in frame.columns]
        if len(set(final)) != len(final):
            raise fail(self, "renaming would create duplicate column names")
        out = frame.rename(columns=mapping)
        return DataFaultResult(
            out, _no_rows(), list(mapping), {"mapping": mapping}, rows_affected=len(frame)
        )
