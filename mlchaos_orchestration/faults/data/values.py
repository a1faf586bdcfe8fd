"""Value faults: change cell values of named columns at a seeded sample of rows.

All of them share one row sample across their ``columns``; ``result.rows`` lists the sampled
positions where some cell really changed (a cell that is already missing is left alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from mlchaos_orchestration.faults.base import DataFaultResult
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.faults.data.common import (
    ColumnsFault,
    contains_text,
    fail,
    is_numeric,
    is_text,
    present_rows,
    require,
    set_at,
    with_columns,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd


def _union(parts: list[np.ndarray], sampled: np.ndarray) -> np.ndarray:
    import numpy as np

    if all(len(p) == len(sampled) for p in parts):
        return sampled
    return np.unique(np.concatenate(parts))


class _ValueFault(ColumnsFault):
    """Template: sample rows once, then build each changed column with ``_column``.

    Each column changes at the sampled rows where it holds a value; ``result.rows`` is the union.
    """

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        self._validate(frame)
        sampled = self.sample_rows(len(frame), rng)
        rows = {c: present_rows(frame[c], sampled) for c in self.columns}
        details: dict[str, Any] = {}
        new = {c: self._column(frame[c], rows[c], rng, details) for c in self.columns}
        changed = _union(list(rows.values()), sampled)
        return DataFaultResult(with_columns(frame, new), changed, list(self.columns), details)

    def _validate(self, frame: pd.DataFrame) -> None:
        """Reject columns this fault cannot act on (default: accept all)."""

    def _column(
        self, s: pd.Series, rows: np.ndarray, rng: np.random.Generator, details: dict[str, Any]
    ) -> Any:
        raise NotImplementedError


@register
class Nulls(_ValueFault):
    """Set a fraction of values to missing (float NaN; int/bool become nullable Int64/boolean).

    Missing marker by dtype: float -> NaN; numpy int/bool -> the column becomes pandas nullable
    ``Int*``/``boolean`` holding ``pd.NA`` (values keep their integer type); strings/categoricals
    -> their own missing value; object -> None; datetimes -> NaT.
    """

    name: ClassVar[str] = "nulls"

    def _column(self, s, rows, rng, details):
        import numpy as np
        import pandas as pd

        kind = s.dtype.kind if isinstance(s.dtype, np.dtype) else None
        if kind == "f":
            return set_at(s, rows, np.nan)
        if kind in ("i", "u", "b"):
            mask = np.zeros(len(s), dtype=bool)
            mask[rows] = True
            masked = pd.arrays.BooleanArray if kind == "b" else pd.arrays.IntegerArray
            details.setdefault("became_nullable", []).append(s.name)
            return pd.Series(masked(s.to_numpy(copy=True), mask), index=s.index, name=s.name)
        return set_at(s, rows, None)


@register
class OutOfRange(_ValueFault):
    """Push numeric values far outside the observed range (max + factor*span or min - factor*span).

    The side is chosen per row by the seed; an explicit ``value`` replaces every sampled cell
    instead. Integer columns keep their dtype when the new values fit, else become float64.
    """

    name: ClassVar[str] = "out_of_range"

    factor: float = Field(10.0, gt=0, description="how many observed spans beyond the range")
    value: float | None = Field(None, description="explicit replacement value (overrides factor)")

    def _validate(self, frame):
        require(self, frame, is_numeric, "numeric")

    def _column(self, s, rows, rng, details):
        import numpy as np

        lo, hi = _min_max(s)
        if lo is None or hi is None:
            raise fail(self, f"column {s.name!r} has no values")
        if self.value is not None:
            new = np.full(len(rows), self.value, dtype=np.float64)
        else:
            span = (hi - lo) or (abs(hi) or 1.0)
            high = rng.random(len(rows)) < 0.5
            new = np.where(high, hi + self.factor * span, lo - self.factor * span)
        details.setdefault("range", {})[s.name] = [lo, hi]
        return set_at(_widen_for(s, new), rows, _cast_like(s, new))


def _min_max(s: pd.Series) -> tuple[float | None, float | None]:
    import numpy as np

    if isinstance(s.dtype, np.dtype):
        values = s.to_numpy()
        if len(values) == 0 or (s.dtype.kind == "f" and np.isnan(values).all()):
            return None, None
        return float(np.nanmin(values)), float(np.nanmax(values))
    lo, hi = s.min(), s.max()
    return (None, None) if lo is None or lo != lo else (float(lo), float(hi))


def _fits(s: pd.Series, new: np.ndarray) -> bool:
    """Whether float ``new`` values can be stored in integer column ``s`` exactly."""
    import numpy as np

    kind = np.dtype(getattr(s.dtype, "numpy_dtype", s.dtype)).kind
    if kind not in ("i", "u"):
        return True
    info = np.iinfo(np.dtype(getattr(s.dtype, "numpy_dtype", s.dtype)))
    return bool(np.all(np.round(new) == new) and new.min() >= info.min and new.max() <= info.max)


def _widen_for(s: pd.Series, new: np.ndarray) -> pd.Series:
    """``s`` itself, or a float copy when integer ``s`` cannot hold ``new``."""
    import numpy as np

    if _fits(s, new):
        return s
    return s.astype("float64" if isinstance(s.dtype, np.dtype) else "Float64")


def _cast_like(s: pd.Series, new: np.ndarray) -> np.ndarray:
    return new.astype(getattr(s.dtype, "numpy_dtype", s.dtype)) if _fits(s, new) else new


@register
class TypeFlip(_ValueFault):
    """Replace a fraction of values by their string form (1 -> "1", True -> "true"): dtype object.

    Strings are Arrow's casts (1.5 -> "1.5", 1.0 -> "1"); the column becomes ``object`` holding
    the original values plus the strings. Columns that already hold strings are rejected.
    """

    name: ClassVar[str] = "type_flip"

    def _validate(self, frame):
        import pandas as pd

        require(self, frame, lambda s: not isinstance(s.dtype, pd.StringDtype), "non-string")

    def _column(self, s, rows, rng, details):
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc

        picked = s.iloc[rows]
        if picked.dtype == object:
            strings = picked.astype(str).to_numpy(dtype=object)
        else:  # Arrow formats a million floats ~5x faster than Python's str()
            arrow = pa.array(picked.to_numpy(), from_pandas=True)
            strings = pc.cast(arrow, pa.string()).to_numpy(zero_copy_only=False)
        out = _boxed_except(s, rows)
        out[rows] = strings
        return pd.Series(out, index=s.index, name=s.name, dtype=object, copy=False)


def _boxed_except(s: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``s`` as a new object array; plain numpy numbers at ``rows`` are left ``None`` (unboxed).

    Boxing every value into a Python object is type_flip's floor; the sampled values are about to
    be overwritten, so they are not boxed at all.
    """
    import numpy as np

    if not (isinstance(s.dtype, np.dtype) and s.dtype.kind in "biuf"):
        return s.to_numpy(dtype=object, copy=True)
    keep = np.ones(len(s), dtype=bool)
    keep[rows] = False
    out = np.empty(len(s), dtype=object)
    np.copyto(out, s.to_numpy(), where=keep)
    return out


@register
class UnseenCategory(_ValueFault):
    """Set a fraction of a string/categorical column to a category that is not in the data."""

    name: ClassVar[str] = "unseen_category"

    value: str = Field("__unseen__", min_length=1, description="the unseen category")

    def _validate(self, frame):
        require(self, frame, is_text, "string/categorical")

    def _column(self, s, rows, rng, details):
        import pandas as pd

        if isinstance(s.dtype, pd.CategoricalDtype):
            if self.value in s.cat.categories:
                raise fail(self, f"{self.value!r} is already a category of {s.name!r}")
            s = s.cat.add_categories([self.value])
        elif contains_text(s, self.value):
            raise fail(self, f"{self.value!r} already occurs in {s.name!r}")
        return set_at(s, rows, self.value)


def _std(s: pd.Series) -> float:
    """Sample standard deviation skipping missing values (Arrow's kernel is ~5x pandas')."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(s.dtype, np.dtype):
        return float(s.std())
    value = pc.stddev(pa.array(s.to_numpy(), from_pandas=True), ddof=1).as_py()
    return float("nan") if value is None else float(value)


@register
class Drift(_ValueFault):
    """Shift numeric values by k standard deviations of their column (default: every row).

    ``fraction`` defaults to 1.0 (a population shift). Integer columns keep their dtype: the
    shift is rounded to a whole number (at least 1). Constant columns are rejected.
    """

    name: ClassVar[str] = "drift"

    fraction: float = Field(1.0, ge=0.0, le=1.0, description="share of rows shifted")
    k: float = Field(2.0, description="shift in standard deviations (negative shifts down)")

    @field_validator("k")
    @classmethod
    def _nonzero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("k must not be 0")
        return value

    def _validate(self, frame):
        require(self, frame, is_numeric, "numeric")

    def _column(self, s, rows, rng, details):
        import numpy as np

        std = _std(s)
        if not std > 0:
            raise fail(self, f"column {s.name!r} is constant or empty (std {std})")
        shift = self.k * std
        if np.dtype(getattr(s.dtype, "numpy_dtype", s.dtype)).kind in ("i", "u"):
            shift = float(np.copysign(max(1.0, round(abs(shift))), shift))
        details.setdefault("shift", {})[s.name] = shift
        if len(rows) == len(s):
            return s + _cast_like(s, np.asarray(shift))
        moved = (s.iloc[rows] + _cast_like(s, np.asarray(shift))).to_numpy()
        return set_at(s, rows, moved)
