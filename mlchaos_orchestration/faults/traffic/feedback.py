"""``feedback_skew``: a user group missing from the feedback labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from mlchaos_orchestration.faults.base import DataFaultResult
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.faults.data.common import VectorDataFault, fail, take_rows

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

Scalar = str | int | float | bool


@register
class FeedbackSkew(VectorDataFault):
    """Drop one user group's rows from the feedback labels (the group never reports back).

    ``column`` names the group column (e.g. ``country``), ``groups`` the value(s) excluded;
    ``fraction`` is the share of the group's rows dropped (default all of them); with ``start``
    only rows whose ``time_column`` is at or after it are dropped (the skew begins then).
    """

    name: ClassVar[str] = "feedback_skew"

    column: str = Field(min_length=1, description="user group column")
    groups: list[Scalar] = Field(min_length=1, description="group value(s) excluded")
    fraction: float = Field(1.0, ge=0.0, le=1.0, description="share of the group's rows dropped")
    start: str | None = Field(None, description="ISO time the skew starts (default: all rows)")
    time_column: str = Field("event_ts", min_length=1, description="feedback time column")

    @field_validator("groups", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, int, float, bool)) else value

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        import numpy as np

        from mlchaos_orchestration.faults.traffic.shifts import from_start

        in_group = frame[self.column].isin(self.groups).to_numpy(dtype=bool, na_value=False)
        if self.start and self.time_column not in frame.columns:
            raise fail(self, f"column(s) not in data: {self.time_column}")
        in_group = in_group & from_start(frame, self.start, self.time_column)
        members = np.flatnonzero(in_group)
        if not len(members):
            raise fail(self, f"no row of {self.column} in {self.groups}")
        dropped = members[self.sample_rows(len(members), rng)]
        keep = np.ones(len(frame), dtype=bool)
        keep[dropped] = False
        out = take_rows(frame, np.flatnonzero(keep)).reset_index(drop=True)
        details = {"dropped_rows": int(len(dropped)), "group_rows": int(len(members))}
        return DataFaultResult(out, dropped, [self.column], details, rows_affected=len(dropped))
