"""Shared pieces of the data-fault catalog: fast seeded sampling, column bases, column surgery.

Everything here is vectorised and copy-light: helpers return *new* columns (the input frame is
never touched) and :func:`with_columns` rebuilds a frame that shares every other column with the
input (pandas copy-on-write), so a fault pays only for the columns it changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from mlchaos_orchestration.errors import SpecError
from mlchaos_orchestration.faults.base import DataFault

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

#: above ``n / _DENSE`` rows one mask pass beats geometric gaps (measured: p > ~0.45 at 10M rows)
_DENSE = 2.5


def fast_sample(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted, distinct, uniformly random ``k`` of ``range(n)`` as int64, in O(k) draws.

    A Bernoulli(``k/n``) selection is drawn (as cumulative geometric gaps, O(k) and already
    sorted, when sparse; as one 16-bit mask pass when dense), then uniformly chosen positions are
    removed or added until exactly ``k`` remain. Every step is symmetric in the positions, so
    each ``k``-subset is equally likely. Above ``n/2`` the complement is sampled instead.
    """
    import numpy as np

    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    if 2 * k > n:
        mask = np.ones(n, dtype=bool)
        mask[fast_sample(n, n - k, rng)] = False
        return np.flatnonzero(mask).astype(np.int64, copy=False)
    bernoulli = _bernoulli_gaps if k * _DENSE <= n else _bernoulli_mask
    pos = bernoulli(n, k / n, rng)
    if len(pos) > k:
        return _without(pos, rng.choice(len(pos), size=len(pos) - k, replace=False))
    return _top_up(pos, n, k - len(pos), rng)


def _bernoulli_mask(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions < ``n`` each selected independently with probability ~``p`` (16-bit)."""
    import numpy as np

    draws = rng.integers(0, 2**16, size=n, dtype=np.uint16)
    return np.flatnonzero(draws < np.uint16(round(p * 2**16))).astype(np.int64, copy=False)


def _bernoulli_gaps(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions < ``n`` each selected independently with probability ``p``.

    The gaps between selected positions are geometric: ``1 + floor(log(V) / log(1 - p))`` with
    ``V`` uniform on (0, 1] is exactly geometric(``p``) (inversion; numpy's SIMD log is cheaper
    than its exponential or geometric samplers). Each cache-sized block is drawn, turned into
    gaps and summed in place, so the positions cost one pass over memory.
    """
    import numpy as np

    inverse = 1.0 / np.log1p(-p)  # negative, as is log(V): the quotient is >= 0
    expected = n * p
    chunks: list[np.ndarray] = []
    last = -1
    while last < n:
        pos = pooled_empty(int(expected + 6 * expected**0.5 + 64), np.dtype(np.int64))
        draws = pos.view(np.float64)  # each block is drawn where its positions will stand
        for start in range(0, len(pos), _BLOCK):
            u, step = draws[start : start + _BLOCK], pos[start : start + _BLOCK]
            rng.random(out=u)
            np.subtract(1.0, u, out=u)  # [0, 1) -> (0, 1]: the log is finite
            np.log(u, out=u)
            np.multiply(u, inverse, out=step, casting="unsafe")  # truncation: floor
            step += 1
            step[0] += last
            np.cumsum(step, out=step)
            last = int(step[-1])
            if last >= n:
                pos = pos[: start + len(step)]
                break
        chunks.append(pos)
    out = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    return out[: np.searchsorted(out, n)]


#: elements per block of the fused sampling passes (a block stays in cache)
_BLOCK = 1 << 15


def _top_up(pos: np.ndarray, n: int, need: int, rng: np.random.Generator) -> np.ndarray:
    """``pos`` (sorted) plus ``need`` uniformly chosen new positions < ``n``, still sorted."""
    import numpy as np

    while need > 0:
        cand = rng.integers(0, n, size=2 * need + 64)
        if len(pos):
            at = np.minimum(np.searchsorted(pos, cand), len(pos) - 1)
            cand = cand[pos[at] != cand]
        _, first = np.unique(cand, return_index=True)
        cand = np.sort(cand[np.sort(first)][:need])  # first `need` distinct draws, in draw order
        pos = _merged(pos, cand)
        need -= len(cand)
    return pos


def _without(pos: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """``np.delete(pos, drop)`` (``drop`` distinct) into pooled memory, a slice copy per gap.

    The few dropped indices cut ``pos`` into runs copied as they are: no index mask over the
    whole array and no freshly mapped output pages.
    """
    out = pooled_empty(len(pos) - len(drop), pos.dtype)
    done = start = 0
    for cut in sorted(drop.tolist()):
        out[done : done + cut - start] = pos[start:cut]
        done, start = done + cut - start, cut + 1
    out[done:] = pos[start:]
    return out


def _merged(pos: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Sorted ``pos`` with the few sorted values ``new`` (not in ``pos``) in place, pooled."""
    import numpy as np

    out = pooled_empty(len(pos) + len(new), pos.dtype)
    start = 0
    places = np.searchsorted(pos, new).tolist()
    for i, (at, value) in enumerate(zip(places, new.tolist(), strict=True)):
        out[start + i : at + i] = pos[start:at]
        out[at + i] = value
        start = at
    out[start + len(new) :] = pos[start:]
    return out


# ------------------------------------------------------------------------------------ bases
class VectorDataFault(DataFault):
    """Data fault base of this catalog: same contract, faster seeded row sampler."""

    def sample_rows(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Sorted positional indices of the rows to change (see :func:`fast_sample`)."""
        return fast_sample(n, self.n_rows(n), rng)


class ColumnsFault(VectorDataFault):
    """A fault acting on named columns (one shared row sample for all of them)."""

    columns: list[str] = Field(min_length=1, description="columns to change")

    @field_validator("columns")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("columns must be distinct")
        return value


class LabelFault(VectorDataFault):
    """A fault acting on the label (target) column."""

    label: str = Field(min_length=1, description="label column")


# ----------------------------------------------------------------------------- column checks
def fail(fault: DataFault, message: str) -> SpecError:
    """A one-line SpecError prefixed with the fault name."""
    return SpecError([f"{fault.name}: {message}"])


def is_numeric(series: pd.Series) -> bool:
    """True for int/uint/float columns (numpy or nullable); booleans are not numeric here."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return is_numeric_dtype(series.dtype) and not is_bool_dtype(series.dtype)


def is_text(series: pd.Series) -> bool:
    """True for pandas string dtypes (``str``/``string``), categoricals and object columns."""
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    return isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype)) or dtype == np.dtype("O")


def require(fault: DataFault, frame: pd.DataFrame, check: Any, kind: str) -> None:
    """Raise SpecError unless ``check(frame[c])`` holds for every column of ``fault.columns``."""
    bad = [c for c in fault.columns if not check(frame[c])]  # type: ignore[attr-defined]
    if bad:
        raise fail(fault, f"needs {kind} column(s), got: {', '.join(bad)}")


def present_rows(s: pd.Series, rows: np.ndarray) -> np.ndarray:
    """The positions of ``rows`` where ``s`` holds a value (not missing)."""
    import numpy as np
    import pandas as pd

    arr = s.array
    if isinstance(arr, pd.arrays.ArrowExtensionArray) and not arr.__arrow_array__().null_count:
        return rows  # Arrow keeps a null count: no missing value anywhere, nothing to look up
    if not isinstance(s.dtype, np.dtype):
        return rows[s.iloc[rows].notna().to_numpy()]
    if s.dtype.kind not in "fcmMO":  # numpy int/bool columns cannot hold a missing value
        return rows
    values = s.to_numpy()
    picked = values if len(rows) == len(values) else values[rows]
    return rows[~(np.isnan(picked) if s.dtype.kind == "f" else pd.isna(picked))]


# --------------------------------------------------------------------------- column surgery
def set_at(series: pd.Series, rows: np.ndarray, values: Any) -> pd.Series:
    """A new column equal to ``series`` with ``values`` at positions ``rows``.

    numpy-backed columns are copied once and assigned in numpy; a string scalar into an Arrow
    string column is one Arrow ``if_else`` (no pandas setitem); other extension arrays
    (categoricals, nullable) go through their own vectorised ``__setitem__`` on a copy.
    """
    import numpy as np
    import pandas as pd

    if isinstance(series.dtype, np.dtype) and series.dtype != object:
        source = series.to_numpy()
        out = pooled_empty(len(source), source.dtype)
        np.copyto(out, source)
        out[rows] = values
        return pd.Series(out, index=series.index, name=series.name, copy=False)
    if isinstance(values, str) and isinstance(series.array, pd.arrays.ArrowStringArray):
        return _set_arrow_text(series, rows, values)
    out = series.copy(deep=True)
    out.iloc[rows] = values
    return out


def _set_arrow_text(series: pd.Series, rows: np.ndarray, value: str) -> pd.Series:
    """``series`` (Arrow-backed strings) with ``value`` at ``rows``, built by Arrow in one pass."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = series.array
    chunked = arr.__arrow_array__()
    mask = np.zeros(len(series), dtype=bool)
    mask[rows] = True
    scalar = pa.scalar(value, chunked.type)
    bounds = _slices(len(series))

    def part(i: int) -> pa.ChunkedArray:
        lo, hi = bounds[i], bounds[i + 1]
        return pc.if_else(pa.array(mask[lo:hi]), scalar, chunked.slice(lo, hi - lo))

    parts = map_columns(part, list(range(len(bounds) - 1)), len(series))  # Arrow drops the GIL
    out = pa.chunked_array([c for i in sorted(parts) for c in parts[i].chunks], chunked.type)
    return pd.Series(type(arr)(out, dtype=arr.dtype), index=series.index, name=series.name)


def _slices(n: int) -> list[int]:
    """Bounds cutting ``n`` rows into one slice per worker (one slice for small columns)."""
    parts = free_cores(4) if n >= _THREADED_ROWS else 1
    return [n * i // parts for i in range(parts + 1)]


def contains_text(series: pd.Series, value: str) -> bool:
    """Whether ``value`` occurs in text column ``series`` (Arrow's kernel for Arrow strings)."""
    import pandas as pd
    import pyarrow.compute as pc

    if isinstance(series.array, pd.arrays.ArrowStringArray):
        return bool(pc.any(pc.equal(series.array.__arrow_array__(), value)).as_py())
    return bool(series.eq(value).any())


def pooled_empty(n: int, dtype: np.dtype) -> np.ndarray:
    """A writable, uninitialised numpy array (non-object ``dtype``) in Arrow's memory pool.

    The pool (mimalloc/jemalloc) recycles freed pages, so a large output column does not pay the
    kernel's page zeroing again on every fault, as a fresh numpy allocation (mmap) does.
    """
    import numpy as np
    import pyarrow as pa

    if n == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(pa.allocate_buffer(n * dtype.itemsize), dtype=dtype)


def _poolable(series: pd.Series) -> bool:
    import numpy as np

    return isinstance(series.dtype, np.dtype) and series.dtype != object


def with_columns(frame: pd.DataFrame, new: dict[str, Any]) -> pd.DataFrame:
    """``frame`` with whole columns replaced; every other column is shared, not copied."""
    out = frame.copy(deep=False)
    for name, column in new.items():
        out[name] = column
    return out


def rebuild(frame: pd.DataFrame, columns: dict[str, Any], index: pd.Index) -> pd.DataFrame:
    """A new frame from already-built column arrays without pandas consolidating (copying) them."""
    import pandas as pd

    out = pd.DataFrame(columns, index=index, copy=False)
    out.columns = frame.columns
    return out


def take_rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``frame.iloc[positions]`` (valid positions, >= 0) built column by column.

    Much cheaper than a 2-D block take; numpy columns are gathered into pooled memory.
    """
    if not frame.columns.is_unique:
        return frame.iloc[positions]
    import pandas as pd

    cols = map_columns(lambda c: _take(frame[c], positions), list(frame.columns), len(positions))
    if _is_default_index(frame):  # RangeIndex.take casts the positions again; they are the labels
        return rebuild(frame, cols, pd.Index(positions, copy=False))
    return rebuild(frame, cols, frame.index.take(positions))


def append_rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``frame`` followed by copies of its rows at ``positions`` (valid, >= 0), column by column.

    A default ``RangeIndex`` stays a fresh ``RangeIndex``; any other index repeats the labels.
    """
    import numpy as np
    import pandas as pd

    if not frame.columns.is_unique:
        return pd.concat([frame, frame.iloc[positions]])
    n = len(frame)

    def grow(c: Any) -> Any:
        s = frame[c]
        if _poolable(s):
            values = s.to_numpy()
            out = pooled_empty(n + len(positions), values.dtype)
            out[:n] = values
            values.take(positions, out=out[n:], mode="clip")  # positions are valid: no check
            return out
        if isinstance(s.dtype, np.dtype):
            values = s.to_numpy()
            return np.concatenate([values, values.take(positions)])
        arr = s.array
        return type(arr)._concat_same_type([arr, arr.take(positions)])

    cols = map_columns(grow, list(frame.columns), n)
    if _is_default_index(frame):
        index: pd.Index = pd.RangeIndex(len(frame) + len(positions))
    else:
        index = frame.index.append(frame.index.take(positions))
    return rebuild(frame, cols, index)


#: rows from which whole-frame column work is spread over threads
_THREADED_ROWS = 1 << 20


def map_columns(fn: Any, columns: list[Any], rows: int) -> dict[Any, Any]:
    """``{c: fn(c)}`` in column order; on a few threads for big frames when cores are idle
    (numpy's and Arrow's copies and gathers release the GIL, so columns are built side by
    side). The threads end with the call: nothing lingers into a forked task process."""
    workers = min(len(columns), free_cores(4)) if rows >= _THREADED_ROWS else 1
    if workers < 2:
        return {c: fn(c) for c in columns}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlchaos-columns") as pool:
        return dict(zip(columns, pool.map(fn, columns), strict=True))


def free_cores(limit: int) -> int:
    """Cores free for this call right now, 1 to ``limit``: this process's CPUs minus the other
    runnable tasks (Linux's instantaneous run queue, ``/proc/loadavg``; elsewhere all CPUs).

    On a busy machine extra threads only queue behind other work and cost more than they save,
    so big-frame work spreads over threads only onto idle cores (results never depend on it).
    """
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            others = int(f.read().split()[3].split("/")[0]) - 1  # this thread is running
    except (OSError, ValueError, IndexError):
        others = 0
    return max(1, min(limit, (cores or 1) - max(0, others)))


def _is_default_index(frame: pd.DataFrame) -> bool:
    import pandas as pd

    index = frame.index
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _take(series: pd.Series, positions: np.ndarray) -> Any:
    import numpy as np

    if _poolable(series):
        values = series.to_numpy()
        if values.dtype.kind in "iuf" and values.dtype.isnative:
            return _arrow_take(values, positions)
        return values.take(positions, out=pooled_empty(len(positions), values.dtype), mode="clip")
    if isinstance(series.dtype, np.dtype):
        return series.to_numpy().take(positions)
    return series.array.take(positions)


def _arrow_take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``values.take(positions)`` for plain numbers by Arrow's gather (faster, pooled output)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(positions) == 0:
        return values[:0].copy()
    taken = pc.take(pa.array(values), pa.array(positions), boundscheck=False)
    return np.frombuffer(taken.buffers()[1], dtype=values.dtype, count=len(taken))
