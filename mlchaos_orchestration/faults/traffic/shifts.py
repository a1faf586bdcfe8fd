"""``traffic_drift``: controlled covariate drift in a segment or a fraction of the traffic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from mlchaos_orchestration.faults.base import DataFaultResult
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.faults.data.common import (
    ColumnsFault,
    fail,
    is_numeric,
    require,
    set_at,
    with_columns,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

Scalar = str | int | float | bool


def segment_mask(frame: pd.DataFrame, segment: dict[str, Scalar] | None) -> np.ndarray:
    """Rows where every ``segment`` column equals its value (all rows without a segment)."""
    import numpy as np

    mask = np.ones(len(frame), dtype=bool)
    for column, value in (segment or {}).items():
        mask &= frame[column].eq(value).to_numpy(dtype=bool, na_value=False)
    return mask


def from_start(frame: pd.DataFrame, start: str | None, time_column: str) -> np.ndarray:
    """Rows whose ``time_column`` is at or after ``start`` (all rows without a start)."""
    import numpy as np
    import pandas as pd

    if not start:
        return np.ones(len(frame), dtype=bool)
    times = pd.to_datetime(frame[time_column])
    return (times >= pd.Timestamp(start)).to_numpy(dtype=bool, na_value=False)


@register
class TrafficDrift(ColumnsFault):
    """Shift numeric request features by k standard deviations in a segment or a fraction of
    the traffic, from ``start`` on (rows whose ``time_column`` is at or after it).

    ``segment`` picks rows by equality (e.g. ``{country: IN}``); ``fraction`` is the share of
    the eligible rows shifted (default all). Integer columns shift by a whole number (>= 1).
    """

    name: ClassVar[str] = "traffic_drift"

    fraction: float = Field(1.0, ge=0.0, le=1.0, description="share of eligible rows shifted")
    k: float = Field(2.0, description="shift in standard deviations (negative shifts down)")
    segment: dict[str, Scalar] | None = Field(None, description="column -> value of the segment")
    start: str | None = Field(None, description="ISO time the drift starts (default: all rows)")
    time_column: str = Field("event_ts", min_length=1, description="request time column")

    @field_validator("k")
    @classmethod
    def _nonzero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("k must not be 0")
        return value

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        import numpy as np

        require(self, frame, is_numeric, "numeric")
        needed = [*(self.segment or {}), *([self.time_column] if self.start else [])]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise fail(self, f"column(s) not in data: {', '.join(missing)}")
        eligible = segment_mask(frame, self.segment)
        eligible &= from_start(frame, self.start, self.time_column)
        candidates = np.flatnonzero(eligible)
        rows = candidates[self.sample_rows(len(candidates), rng)]
        new: dict[str, Any] = {}
        shifts: dict[str, float] = {}
        for column in self.columns:
            s = frame[column]
            std = float(s.std())
            if not std > 0:
                raise fail(self, f"column {column!r} is constant or empty (std {std})")
            shift = self.k * std
            if s.dtype.kind in "iu":
                shift = float(np.copysign(max(1.0, round(abs(shift))), shift))
            shifts[column] = shift
            new[column] = set_at(s, rows, (s.iloc[rows] + shift).to_numpy())
        details = {"shift": shifts, "eligible_rows": int(len(candidates)), "start": self.start}
        return DataFaultResult(with_columns(frame, new), rows, list(self.columns), details)
