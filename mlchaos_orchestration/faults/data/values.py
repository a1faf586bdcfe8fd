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
    free_cores,
    is_numeric,
    is_text,
    pooled_empty,
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
    ``stat`` is the whole-column fact a change depends on (range, spread, ...); streaming faults
    compute it per chunk with ``chunk_stat`` and combine the parts with ``merge_stats``.
    """

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        self._validate(frame)
        sampled = self.sample_rows(len(frame), rng)
        stats = {c: self.stat(frame[c]) for c in self.columns}
        rows = {c: self._present(frame[c], sampled, stats[c]) for c in self.columns}
        details: dict[str, Any] = {}
        new = {c: self._column(frame[c], rows[c], rng, details, stats[c]) for c in self.columns}
        changed = _union(list(rows.values()), sampled)
        return DataFaultResult(with_columns(frame, new), changed, list(self.columns), details)

    def _validate(self, frame: pd.DataFrame) -> None:
        """Reject columns this fault cannot act on (default: accept all)."""

    def stat(self, s: pd.Series) -> Any:
        """The whole-column fact ``_column`` needs (default: none)."""
        return None

    def chunk_stat(self, s: pd.Series) -> Any:
        """The part of ``stat`` one chunk of the column contributes (default: ``stat``)."""
        return self.stat(s)

    def merge_stats(self, parts: list[Any]) -> Any:
        """``stat`` of a whole column from its chunks' ``chunk_stat`` parts."""
        return parts[0] if parts else None

    def _present(self, s: pd.Series, rows: np.ndarray, stat: Any) -> np.ndarray:
        """The sampled ``rows`` where ``s`` holds a value."""
        return present_rows(s, rows)

    def _column(
        self,
        s: pd.Series,
        rows: np.ndarray,
        rng: np.random.Generator,
        details: dict[str, Any],
        stat: Any,
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

    def _column(self, s, rows, rng, details, stat):
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

    def stat(self, s):
        """The range, and for a plain numpy column a fresh copy made in the same pass."""
        import numpy as np

        if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iuf" and len(s):
            return _copy_min_max(s.to_numpy())
        return _min_max(s)

    def chunk_stat(self, s):
        return _min_max(s)

    def merge_stats(self, parts):
        return _merge_ranges(parts)

    def _present(self, s, rows, stat):
        return rows if stat[2] is False else present_rows(s, rows)

    def _column(self, s, rows, rng, details, stat):
        import numpy as np
        import pandas as pd

        lo, hi, _ = stat[:3]
        if lo is None or hi is None:
            raise fail(self, f"column {s.name!r} has no values")
        if self.value is not None:
            ends = np.array([self.value], dtype=np.float64)
        else:
            span = (hi - lo) or (abs(hi) or 1.0)
            ends = np.array([lo - self.factor * span, hi + self.factor * span])
        details.setdefault("range", {})[s.name] = [lo, hi]
        fits = _fits(s, ends)  # decided by the range alone: every chunk of a column agrees
        if fits:
            ends = ends.astype(getattr(s.dtype, "numpy_dtype", s.dtype))
        new = ends[0] if self.value is not None else _either(ends, len(rows), rng)
        if fits and len(stat) > 3:  # the copy made while finding the range
            copy = stat[3]
            copy[rows] = new
            return pd.Series(copy, index=s.index, name=s.name, copy=False)
        out = s if fits else s.astype("float64" if isinstance(s.dtype, np.dtype) else "Float64")
        return set_at(out, rows, new)


def _either(ends: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` values, each ``ends[0]`` or ``ends[1]`` by a fair seeded coin (pooled memory)."""
    import numpy as np

    side = rng.integers(0, 2, size=k, dtype=np.bool_).view(np.uint8)
    return np.take(ends, side, out=pooled_empty(k, ends.dtype), mode="clip")  # clip: no check


Range = tuple[float | None, float | None, bool | None]


def _min_max(s: pd.Series) -> Range:
    """(min, max, whether any value is missing) skipping missing values; ``None`` if unknown.

    A float column's plain min is NaN exactly when it holds a NaN, so the NaN-skipping passes
    run only then.
    """
    import numpy as np

    if isinstance(s.dtype, np.dtype):
        values = s.to_numpy()
        if len(values) == 0:
            return None, None, False
        lo = values.min()
        if s.dtype.kind != "f" or not np.isnan(lo):
            return float(lo), float(values.max()), False
        if np.isnan(values).all():
            return None, None, True
        return float(np.nanmin(values)), float(np.nanmax(values)), True
    lo, hi = s.min(), s.max()
    return (None, None, None) if lo is None or lo != lo else (float(lo), float(hi), None)


#: elements per block of the fused copy + range pass (a block stays in cache)
_BLOCK = 1 << 16


def _copy_min_max(values: np.ndarray) -> tuple[float | None, float | None, bool, np.ndarray]:
    """(min, max, any missing, a copy) of a numpy number column in one pass over memory: each
    block is copied, then its range taken from cache. NaN-skipping passes run only if a NaN
    showed up."""
    import numpy as np

    copy = pooled_empty(len(values), values.dtype)
    lows, highs = [], []
    for start in range(0, len(values), _BLOCK):
        block = copy[start : start + _BLOCK]
        np.copyto(block, values[start : start + _BLOCK])
        lows.append(block.min())
        highs.append(block.max())
    lo, hi = np.min(lows), np.max(highs)  # NaN propagates (Python's min would skip it)
    if values.dtype.kind != "f" or not (np.isnan(lo) or np.isnan(hi)):
        return float(lo), float(hi), False, copy
    if np.isnan(values).all():
        return None, None, True, copy
    return float(np.nanmin(values)), float(np.nanmax(values)), True, copy


def _merge_ranges(parts: list[Range]) -> Range:
    los = [p[0] for p in parts if p[0] is not None]
    his = [p[1] for p in parts if p[1] is not None]
    missing = [p[2] for p in parts]
    merged = True if True in missing else (None if None in missing else False)
    return (min(los) if los else None, max(his) if his else None, merged)


def _fits(s: pd.Series, new: np.ndarray) -> bool:
    """Whether float ``new`` values can be stored in integer column ``s`` exactly."""
    import numpy as np

    kind = np.dtype(getattr(s.dtype, "numpy_dtype", s.dtype)).kind
    if kind not in ("i", "u"):
        return True
    info = np.iinfo(np.dtype(getattr(s.dtype, "numpy_dtype", s.dtype)))
    return bool(np.all(np.round(new) == new) and new.min() >= info.min and new.max() <= info.max)


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

    def _column(self, s, rows, rng, details, stat):
        import pandas as pd

        picked = None if _plain_numbers(s) else s.iloc[rows]
        if picked is not None and picked.dtype == object:
            out = _boxed_except(s, rows)
            out[rows] = picked.astype(str).to_numpy(dtype=object)
            return pd.Series(out, index=s.index, name=s.name, dtype=object, copy=False)
        values = s.to_numpy()[rows] if picked is None else picked.to_numpy()
        if len(rows) < _OVERLAP_ROWS or free_cores(2) < 2:
            out = _boxed_except(s, rows)
            out[rows] = _arrow_text(values).to_numpy(zero_copy_only=False)
        else:  # Arrow formats on an idle core (no GIL) while this thread boxes the column
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlchaos-text") as pool:
                text = pool.submit(_arrow_text, values)
                out = _boxed_except(s, rows)
                out[rows] = text.result().to_numpy(zero_copy_only=False)
        return pd.Series(out, index=s.index, name=s.name, dtype=object, copy=False)


#: sampled rows from which type_flip formats its strings on a second thread
_OVERLAP_ROWS = 100_000


def _arrow_text(values: Any) -> Any:
    """``values`` (numbers or booleans) as Arrow strings (Arrow formats ~5x faster than ``str``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(pa.array(values, from_pandas=True), pa.string())


def _plain_numbers(s: pd.Series) -> bool:
    """Whether ``s`` is a numpy number or boolean column (never missing but for float NaN)."""
    import numpy as np

    return isinstance(s.dtype, np.dtype) and s.dtype.kind in "biuf"


def _boxed_except(s: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``s`` as a new object array; plain numpy numbers at ``rows`` are left ``None`` (unboxed).

    Boxing every value into a Python object is type_flip's floor; the sampled values are about to
    be overwritten, so they are not boxed at all. Boxing holds the GIL, so it goes block by
    block: between blocks a thread formatting the strings gets to its GIL-free Arrow cast.
    """
    import numpy as np

    if not _plain_numbers(s):
        return s.to_numpy(dtype=object, copy=True)
    values = s.to_numpy()
    keep = np.ones(len(s), dtype=bool)
    keep[rows] = False
    out = np.empty(len(s), dtype=object)
    for start in range(0, len(s), _BLOCK):
        block = slice(start, start + _BLOCK)
        np.copyto(out[block], values[block], where=keep[block])
    return out


@register
class UnseenCategory(_ValueFault):
    """Set a fraction of a string/categorical column to a category that is not in the data."""

    name: ClassVar[str] = "unseen_category"

    value: str = Field("__unseen__", min_length=1, description="the unseen category")

    def _validate(self, frame):
        require(self, frame, is_text, "string/categorical")

    def stat(self, s):
        """Whether the value already occurs (as a category or in the data)."""
        import pandas as pd

        if isinstance(s.dtype, pd.CategoricalDtype):
            return self.value in s.cat.categories
        return contains_text(s, self.value)

    def merge_stats(self, parts):
        return any(parts)

    def _column(self, s, rows, rng, details, stat):
        import pandas as pd

        if stat:
            raise fail(self, f"{self.value!r} already occurs in {s.name!r}")
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.cat.add_categories([self.value])
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


def _pooled_std(parts: list[tuple[int, float, float]]) -> float:
    """Sample standard deviation from per-chunk (count, mean, M2) (Chan et al.'s combination)."""
    n, mean, m2 = 0, 0.0, 0.0
    for n_b, mean_b, m2_b in parts:
        if n_b == 0:
            continue
        total = n + n_b
        delta = mean_b - mean
        m2 += m2_b + delta * delta * n * n_b / total
        mean += delta * n_b / total
        n = total
    return (m2 / (n - 1)) ** 0.5 if n > 1 else float("nan")


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

    def stat(self, s):
        return _std(s)

    def chunk_stat(self, s):
        """(count, mean, sum of squared deviations) of the chunk's present values."""
        import numpy as np

        values = s.dropna().to_numpy(dtype=np.float64)
        mean = float(values.mean()) if len(values) else 0.0
        return len(values), mean, float(np.square(values - mean).sum())

    def merge_stats(self, parts):
        return _pooled_std(parts)

    def _column(self, s, rows, rng, details, stat):
        import numpy as np

        std = stat
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
