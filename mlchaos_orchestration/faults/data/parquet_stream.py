"""Data faults on Parquet datasets larger than memory, row group by row group with pyarrow.

A dataset is one or more Parquet files read as one table (files in the given order). A fault acts
on that table as it would in memory, with one seeded sample of rows over the whole dataset, but
at most two row groups are held at a time - the one being written and the next, read and
transformed meanwhile on a worker thread (``label_shuffle`` also holds its sampled labels):

- the sample: exactly ``round(fraction * rows)`` rows (capped by ``max_rows``), uniformly random
  over the dataset, drawn row group by row group (see :class:`_Sampler`): it is a different
  sample than the in-memory fault draws with the same seed, with the same law;
- value faults: whole-column facts (range, spread, whether a value occurs) come from a first pass
  over the fault's columns only; then each row group is rewritten with its share of the sample;
- ``duplicate_rows`` appends each row group's sampled rows at the end of that row group;
- ``class_removal`` / ``mislabel`` count classes in a first pass over the label column;
- ``label_shuffle`` is global: pass one gathers the sampled labels (the one structure the size of
  the sample: 1 byte per sampled row for small integer labels), one seeded permutation of them
  is drawn, pass two writes them back in place;
- ``drop_column`` / ``rename_column`` reshape each row group.

Every output file keeps its input's row-group boundaries, column order and codecs (a column made
text by ``type_flip`` is written plain and uncompressed). Sampled rows and per-row draws
(out-of-range sides, multi-class relabels) come from generators seeded by
``(seed, row group number)``, so a run is reproducible byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlchaos_orchestration.errors import SafetyError, TargetError
from mlchaos_orchestration.faults.data.common import fail, present_rows, set_at
from mlchaos_orchestration.faults.data.labels import ClassRemoval, LabelShuffle, Mislabel
from mlchaos_orchestration.faults.data.rows import DuplicateRows
from mlchaos_orchestration.faults.data.schema import DropColumn, RenameColumn
from mlchaos_orchestration.faults.data.values import _union, _ValueFault

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlchaos_orchestration.faults.base import DataFault

#: (table of one row group, its first row's position in the dataset, its number) -> (out, changed)
Transform = Callable[["pa.Table", int, int], tuple["pa.Table", int]]


@dataclass
class StreamOutcome:
    """What a streamed fault did: the same facts ``StoredDataFault`` reports for one target."""

    rows_changed: int
    rows_read: int
    columns: list[str]
    details: dict[str, Any] = field(default_factory=dict)


def can_stream(fault: DataFault) -> bool:
    """Whether ``fault`` has a row-group-by-row-group implementation."""
    return isinstance(fault, _STREAMABLE)


def stream_fault(
    fault: DataFault,
    sources: list[str],
    sinks: list[str],
    seed: int,
    *,
    filesystem: Any = None,
    on_written: Callable[[int], None] | None = None,
) -> StreamOutcome:
    """Fault the dataset made of ``sources`` and write file ``i`` to ``sinks[i]``.

    ``filesystem`` is a ``pyarrow.fs`` filesystem (local paths when ``None``); ``on_written(i)``
    runs once ``sinks[i]`` is complete and closed (the caller swaps it in).
    """
    if len(sources) != len(sinks):
        raise ValueError("one sink per source")
    data = _Dataset(sources, filesystem)
    fault._check_columns(data.probe)  # same one-line errors as in memory
    plan = _plan(fault, data, seed)
    rows_changed = data.rewrite(plan.transform, sinks, plan.renames, on_written)
    return StreamOutcome(rows_changed, data.rows, plan.columns, plan.details)


# ------------------------------------------------------------------------------------ dataset
class _Dataset:
    """Parquet files read as one table, one row group at a time."""

    def __init__(self, sources: list[str], filesystem: Any):
        import pyarrow.parquet as pq

        self.fs = filesystem
        self.sources = sources
        self.files = [pq.ParquetFile(self._open(s)) for s in sources]
        if not self.files:
            raise TargetError("no Parquet file to fault")
        self.schema = self.files[0].schema_arrow
        for source, file in zip(sources, self.files, strict=True):
            if not file.schema_arrow.equals(self.schema, check_metadata=False):
                raise TargetError(f"{source}: schema differs from {sources[0]}'s")
        self.rows = sum(f.metadata.num_rows for f in self.files)
        self.probe = self.schema.empty_table().to_pandas()

    def _open(self, path: str) -> Any:
        return path if self.fs is None else self.fs.open_input_file(path)

    def group_sizes(self) -> list[int]:
        """Rows of every row group, in dataset order (from the files' footers)."""
        return [
            f.metadata.row_group(i).num_rows for f in self.files for i in range(f.num_row_groups)
        ]

    def row_groups(self, columns: list[str] | None = None) -> Iterator[tuple[int, pa.Table]]:
        """(first row position, table) of every row group in dataset order."""
        offset = 0
        for file in self.files:
            for i in range(file.num_row_groups):
                table = file.read_row_group(i, columns=columns)
                yield offset, table
                offset += table.num_rows

    def column(self, name: str) -> Iterator[pd.Series]:
        """The column ``name`` as one pandas Series per row group."""
        for _, table in self.row_groups([name]):
            yield to_series(table.column(0))

    def rewrite(
        self,
        transform: Transform,
        sinks: list[str],
        renames: dict[str, str],
        on_written: Callable[[int], None] | None,
    ) -> int:
        """Write every file's row groups through ``transform``; return rows changed.

        One group of lookahead (:class:`_Lookahead`): the next row group is read and transformed
        on a worker thread while this thread writes the current one."""
        import pyarrow as pa

        changed, offset, index = 0, 0, 0
        schema = None
        pool = pa.default_memory_pool()
        for n, (file, sink) in enumerate(zip(self.files, sinks, strict=True)):
            with self._sink(sink) as where:
                writer = None
                try:
                    with _Lookahead(file, transform, offset, index) as groups:
                        for out, hit in groups:
                            index, changed = index + 1, changed + hit
                            schema = schema or self._out_schema(out.schema, renames)
                            out = out if out.schema.equals(schema) else out.cast(schema)
                            if writer is None:
                                writer = self._writer(where, schema, file, renames)
                            writer.write_table(out, row_group_size=max(1, out.num_rows))
                            del out
                            # Arrow's allocator keeps freed buffers: hand them back after every
                            # group (50M rows in 250k-row groups: 326-385 MB peak, 358-395 MB
                            # every 2nd-4th group; the cost hides behind the lookahead)
                            pool.release_unused()
                    offset = groups.offset
                    if writer is None:  # a file without row groups stays an empty file
                        empty, _ = transform(self.schema.empty_table(), offset, index)
                        schema = schema or self._out_schema(empty.schema, renames)
                        writer = self._writer(where, schema, file, renames)
                        writer.write_table(empty.cast(schema))
                finally:
                    if writer is not None:
                        writer.close()
            if on_written is not None:
                on_written(n)
        return changed

    def _out_schema(self, produced: pa.Schema, renames: dict[str, str]) -> pa.Schema:
        """The output schema: input types where the fault kept a column's kind of type."""
        import pyarrow as pa

        fields = []
        for f in produced:
            original = self.schema.field(renames.get(f.name, f.name)) if f.name else None
            if original is not None and _same_kind(original.type, f.type):
                fields.append(f.with_type(original.type))
            else:
                fields.append(f)
        metadata = self.schema.metadata or {}
        same = [f.name for f in fields] == self.schema.names and all(
            f.type == self.schema.field(f.name).type for f in fields
        )
        if not same:  # pandas' stored column facts would be stale
            metadata = {k: v for k, v in metadata.items() if k != b"pandas"}
        return pa.schema(fields, metadata=metadata or None)

    @contextmanager
    def _sink(self, sink: str) -> Iterator[Any]:
        """Where a file is written: a local path, or an output stream closed after the writer."""
        if self.fs is None:
            yield sink
            return
        stream = self.fs.open_output_stream(sink)
        try:
            yield stream
        finally:
            stream.close()

    def _writer(
        self, where: Any, schema: pa.Schema, file: pq.ParquetFile, renames: dict[str, str]
    ) -> pq.ParquetWriter:
        """A writer with the input's codecs. A column whose type the fault changed (numbers
        made text) is written plainly: no dictionary attempt, no min/max statistics, no
        compression (near-unique text whose order means nothing; compressing it would cost
        more than reading and writing every other column - this is a faulted copy that the
        restore replaces)."""
        import pyarrow.parquet as pq

        kept = [
            f.name for f in schema if self.schema.field(renames.get(f.name, f.name)).type == f.type
        ]
        codecs = _compression(file, schema, renames)
        if isinstance(codecs, dict):
            codecs = {n: c if n in kept else "none" for n, c in codecs.items()}
        return pq.ParquetWriter(
            where,
            schema,
            compression=codecs,
            use_dictionary=kept if len(kept) < len(schema) else True,
            write_statistics=kept if len(kept) < len(schema) else True,
        )


class _Lookahead:
    """Iterates over one file's row groups transformed, ``(out, rows changed)`` in order; each
    group is read and transformed on a worker thread while the caller writes the previous one
    (pyarrow's writer runs without the GIL: the transform's cost hides behind the write). One
    group at a time, in order, so the output never depends on the thread."""

    def __init__(self, file: pq.ParquetFile, transform: Transform, offset: int, index: int):
        self._file = file
        self._transform = transform
        self.offset = offset  # first row of the next group to prepare (moved by the worker)
        self._index = index
        self._next = 0
        self._pending: Any = None
        self._pool: Any = None

    def __enter__(self) -> _Lookahead:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlchaos-parquet")
        self._submit()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self._pool.shutdown(wait=True)

    def __iter__(self) -> Iterator[tuple[pa.Table, int]]:
        while self._pending is not None:
            out, hit = self._pending.result()
            self._submit()
            yield out, hit
            del out

    def _submit(self) -> None:
        if self._next < self._file.num_row_groups:
            self._pending = self._pool.submit(self._prepare, self._next)
            self._next += 1
        else:
            self._pending = None

    def _prepare(self, i: int) -> tuple[pa.Table, int]:
        table = self._file.read_row_group(i)
        out = self._transform(table, self.offset, self._index + i)
        self.offset += table.num_rows
        return out


def _same_kind(a: pa.DataType, b: pa.DataType) -> bool:
    import pyarrow as pa

    if a == b:
        return True
    text = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    if any(t(a) for t in text) and any(t(b) for t in text):
        return True
    return pa.types.is_dictionary(a) and pa.types.is_dictionary(b)


_CODECS = {"UNCOMPRESSED": "none", "LZ4_RAW": "lz4", "LZ4": "lz4"}


def _compression(
    file: pq.ParquetFile, schema: pa.Schema, renames: dict[str, str]
) -> str | dict[str, str]:
    """The input file's codec per column (``snappy`` for a file without row groups)."""
    if file.num_row_groups == 0:
        return "snappy"
    group = file.metadata.row_group(0)
    by_path = {
        group.column(i).path_in_schema: group.column(i).compression
        for i in range(group.num_columns)
    }
    out = {}
    for name in schema.names:
        codec = by_path.get(renames.get(name, name), "SNAPPY")
        out[name] = _CODECS.get(codec, codec.lower())
    return out


def to_series(column: pa.ChunkedArray) -> pd.Series:
    """``column`` as pandas; integers and booleans holding nulls become nullable dtypes, so a
    row group's dtype does not depend on whether it happens to hold a missing value."""
    import pandas as pd
    import pyarrow as pa

    t = column.type
    if column.null_count and (pa.types.is_integer(t) or pa.types.is_boolean(t)):
        dtype = (
            pd.BooleanDtype()
            if pa.types.is_boolean(t)
            else pd.api.types.pandas_dtype(
                f"{'U' if pa.types.is_unsigned_integer(t) else ''}Int{t.bit_width}"
            )
        )
        return column.to_pandas(types_mapper={t: dtype}.get)
    return column.to_pandas()


def to_arrow(series: pd.Series) -> pa.Array:
    """A faulted column back to Arrow (an object column - ``type_flip`` - as text)."""
    import pyarrow as pa

    from mlchaos_orchestration.faults.data.arrow import as_text

    if series.dtype == object:
        series = as_text(series)
    return pa.Array.from_pandas(series)


def _put(table: pa.Table, name: str, series: pd.Series) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, to_arrow(series))


class _Sampler:
    """A uniformly random ``k`` of the dataset's rows, drawn row group by row group.

    How many sampled rows fall in each row group is drawn once (sequential hypergeometric
    draws: exactly ``k`` in all, every ``k``-subset equally likely); the rows themselves are drawn
    when their row group is read, from a generator seeded by ``(seed, row group, 0)``, so they
    are the same on every pass and memory stays the size of one row group's sample.
    """

    def __init__(self, sizes: list[int], k: int, seed: int, rng: np.random.Generator):
        import numpy as np

        self.seed = seed
        self.counts = np.zeros(len(sizes), dtype=np.int64)
        rows_left, k_left = sum(sizes), k
        for i, m in enumerate(sizes):
            if k_left and m:
                self.counts[i] = _share(m, rows_left, k_left, rng)
            rows_left, k_left = rows_left - m, k_left - int(self.counts[i])
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])

    @property
    def k(self) -> int:
        return int(self.starts[-1])

    def rows(self, index: int, m: int) -> np.ndarray:
        """Sorted sampled positions inside row group ``index`` (of ``m`` rows)."""
        import numpy as np

        from mlchaos_orchestration.faults.data.common import fast_sample

        return fast_sample(m, int(self.counts[index]), np.random.default_rng([self.seed, index, 0]))


def _share(m: int, rows: int, k: int, rng: np.random.Generator) -> int:
    """How many of ``k`` rows sampled from ``rows`` fall among the first ``m``."""
    if m >= rows:
        return k
    if rows < 10**9:
        return int(rng.hypergeometric(k, rows - k, m))
    # numpy's hypergeometric stops at 1e9 rows: the binomial is its limit for m << rows
    return int(min(m, k, max(k - (rows - m), rng.binomial(m, k / rows))))


def _sampler(fault: DataFault, data: _Dataset, seed: int, rng: np.random.Generator) -> _Sampler:
    return _Sampler(data.group_sizes(), fault.n_rows(data.rows), seed, rng)


def _chunk_rng(seed: int, index: int) -> np.random.Generator:
    """Per-row draws (sides, relabels) of row group ``index``."""
    import numpy as np

    return np.random.default_rng([seed, index, 1])


# --------------------------------------------------------------------------------------- plans
@dataclass
class _Plan:
    transform: Transform
    columns: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    renames: dict[str, str] = field(default_factory=dict)  # new name -> input name


def _plan(fault: DataFault, data: _Dataset, seed: int) -> _Plan:
    import numpy as np

    for kind, build in _PLANS:
        if isinstance(fault, kind):
            return build(fault, data, seed, np.random.default_rng(seed))
    raise TargetError(f"{fault.name}: no streaming implementation")


def _value_plan(fault: _ValueFault, data: _Dataset, seed: int, rng: Any) -> _Plan:
    fault._validate(data.probe)
    sample = _sampler(fault, data, seed, rng)
    stats = {c: _column_stat(fault, data, c) for c in fault.columns}
    details: dict[str, Any] = {}
    # Parquet holds no mixed column: every value of a type_flip column becomes its text (Arrow's
    # cast, as the in-memory fault formats its sampled values), missing values stay missing
    flip = fault.name == "type_flip"

    def transform(table: pa.Table, offset: int, index: int) -> tuple[pa.Table, int]:
        if flip:
            return _as_text(table, fault.columns), _present_any(table, fault.columns)
        local = sample.rows(index, table.num_rows)
        rng = _chunk_rng(seed, index)
        found: dict[str, Any] = {}
        parts = []
        for c in fault.columns:
            s = to_series(table.column(c))
            rows = fault._present(s, local, stats[c])
            table = _put(table, c, fault._column(s, rows, rng, found, stats[c]))
            parts.append(rows)
        for key, value in found.items():
            details.setdefault(key, value)
        return table, len(_union(parts, local)) if parts else 0

    return _Plan(transform, list(fault.columns), details)


def _column_stat(fault: _ValueFault, data: _Dataset, column: str) -> Any:
    """The fault's whole-column ``stat``: one pass over that column, if the fault has one."""
    if type(fault).chunk_stat is _ValueFault.chunk_stat and type(fault).stat is _ValueFault.stat:
        return None
    return fault.merge_stats([fault.chunk_stat(s) for s in data.column(column)])


def _as_text(table: pa.Table, columns: list[str]) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    for c in columns:
        at = table.schema.get_field_index(c)
        table = table.set_column(at, c, pc.cast(table.column(c), pa.string()))
    return table


def _present_any(table: pa.Table, columns: list[str]) -> int:
    import pyarrow.compute as pc

    valid = None
    for c in columns:
        v = pc.is_valid(table.column(c))
        valid = v if valid is None else pc.or_(valid, v)
    return int(pc.sum(valid).as_py() or 0) if valid is not None else 0


def _duplicate_plan(fault: DuplicateRows, data: _Dataset, seed: int, rng: Any) -> _Plan:
    import pyarrow as pa

    sample = _sampler(fault, data, seed, rng)

    def transform(table: pa.Table, offset: int, index: int) -> tuple[pa.Table, int]:
        local = sample.rows(index, table.num_rows)
        if not len(local):
            return table, 0
        return pa.concat_tables([table, table.take(pa.array(local))]), len(local)

    return _Plan(transform, list(data.schema.names))


def _class_counts(data: _Dataset, label: str) -> pd.Series:
    """Rows per class over the whole dataset, ordered like the in-memory ``class_counts``."""
    import pandas as pd

    from mlchaos_orchestration.faults.data.labels import class_counts

    parts = [class_counts(s) for s in data.column(label)]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.Series([], dtype="int64")
    counts = pd.concat(parts).groupby(level=0, sort=False).sum()
    try:
        return counts.sort_index()
    except TypeError:
        return counts


def _class_removal_plan(fault: ClassRemoval, data: _Dataset, seed: int, rng: Any) -> _Plan:
    import pyarrow as pa
    import pyarrow.compute as pc

    from mlchaos_orchestration.faults.data.labels import _plain

    counts = _class_counts(data, fault.label)
    if counts.empty:
        raise fail(fault, f"label {fault.label!r} has no classes")
    target = list(fault.classes) if fault.classes is not None else [counts.idxmin()]
    absent = [c for c in target if c not in counts.index]
    if absent:
        raise fail(fault, f"class(es) not in {fault.label!r}: {', '.join(map(str, absent))}")
    removed = int(counts[target].sum())
    if fault.max_rows is not None and removed > fault.max_rows:
        raise SafetyError(
            f"class_removal would remove {removed} rows, more than max_rows={fault.max_rows}"
        )
    label_type = data.schema.field(fault.label).type
    values = pa.array(_plain(target), type=label_type)

    def transform(table: pa.Table, offset: int, index: int) -> tuple[pa.Table, int]:
        gone = pc.is_in(table.column(fault.label), value_set=values)
        kept = table.filter(pc.invert(gone))
        return kept, table.num_rows - kept.num_rows

    details = {"label": fault.label, "classes": _plain(target), "removed_rows": removed}
    return _Plan(transform, list(data.schema.names), details)


def _mislabel_plan(fault: Mislabel, data: _Dataset, seed: int, rng: Any) -> _Plan:
    import numpy as np

    from mlchaos_orchestration.faults.data.labels import _plain

    classes = _class_counts(data, fault.label).index
    if len(classes) < 2:
        raise fail(fault, f"label {fault.label!r} needs at least 2 classes")
    sample = _sampler(fault, data, seed, rng)

    def transform(table: pa.Table, offset: int, index: int) -> tuple[pa.Table, int]:
        s = to_series(table.column(fault.label))
        rows = present_rows(s, sample.rows(index, table.num_rows))
        old = s.iloc[rows]
        if len(classes) == 2:
            codes = (old != classes[1]).to_numpy(dtype=np.intp)
        else:
            draws = _chunk_rng(seed, index).integers(1, len(classes), size=len(rows))
            codes = (classes.get_indexer(old) + draws) % len(classes)
        return _put(table, fault.label, set_at(s, rows, classes.take(codes).to_numpy())), len(rows)

    details: dict[str, Any] = {"classes": _plain(classes)}
    if len(classes) == 2:
        a, b = _plain(classes)
        details["mapping"] = {str(a): b, str(b): a}
    return _Plan(transform, [fault.label], details)


def _shuffle_plan(fault: LabelShuffle, data: _Dataset, seed: int, rng: Any) -> _Plan:
    """Pass one gathers the sampled labels (integer labels in their smallest integer type) and
    draws one permutation of them; pass two writes the moved labels back in place."""
    import numpy as np

    sample = _sampler(fault, data, seed, rng)
    old = _gather(data, fault.label, sample)
    order = np.arange(len(old), dtype=np.int32 if len(old) < 2**31 else np.int64)
    rng.shuffle(order)
    new = old[order]
    del order
    moved = _differs(old, new)
    del old

    def transform(table: pa.Table, offset: int, index: int) -> tuple[pa.Table, int]:
        lo, hi = sample.starts[index], sample.starts[index + 1]
        hit = moved[lo:hi]
        if not hit.any():
            return table, 0
        s = to_series(table.column(fault.label))
        out = set_at(s, sample.rows(index, table.num_rows)[hit], _values(new[lo:hi][hit], s))
        return _put(table, fault.label, out), int(hit.sum())

    return _Plan(transform, [fault.label], {"shuffled_rows": sample.k})


def _gather(data: _Dataset, label: str, sample: _Sampler) -> Any:
    """The sampled labels in dataset order: a compact numpy array, or a pandas Series."""
    import numpy as np
    import pandas as pd

    parts: list[Any] = []
    for index, (_, table) in enumerate(data.row_groups([label])):
        s = to_series(table.column(0))
        picked = s.iloc[sample.rows(index, table.num_rows)]
        parts.append(_compact(picked.to_numpy()) if _plain_int(s) else picked)
    if not parts:
        return np.empty(0, dtype=np.int8)
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)  # the smallest integer type holding every part
    return pd.concat([pd.Series(p) for p in parts], ignore_index=True).array


def _plain_int(s: pd.Series) -> bool:
    import numpy as np

    return isinstance(s.dtype, np.dtype) and s.dtype.kind in "iub"


def _compact(values: np.ndarray) -> np.ndarray:
    """Integer ``values`` in the smallest integer type that holds them exactly."""
    import numpy as np

    if values.dtype.kind not in "iu" or not len(values):
        return values
    small = np.result_type(np.min_scalar_type(values.min()), np.min_scalar_type(values.max()))
    return values.astype(small)


def _differs(old: Any, new: Any) -> np.ndarray:
    """Where the permuted label differs (missing == missing)."""
    import numpy as np
    import pandas as pd

    if isinstance(old, np.ndarray):
        return old != new
    same = pd.Series(old).eq(pd.Series(new)).to_numpy(dtype=bool, na_value=False)
    return ~(same | (pd.isna(old) & pd.isna(new)))


def _values(values: Any, s: pd.Series) -> Any:
    """Gathered label values back in the column's own numpy type."""
    import numpy as np

    if isinstance(values, np.ndarray) and isinstance(s.dtype, np.dtype):
        return values.astype(s.dtype, copy=False)
    return np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values


def _drop_plan(fault: DropColumn, data: _Dataset, seed: int, rng: Any) -> _Plan:
    def transform(table: pa.Table, offset: int, index: int) -> tuple[pa.Table, int]:
        return table.drop_columns(fault.columns), table.num_rows

    return _Plan(transform, list(fault.columns))


def _rename_plan(fault: RenameColumn, data: _Dataset, seed: int, rng: Any) -> _Plan:
    mapping = fault.renames()
    fault._apply(data.probe, rng)  # same checks as in memory (missing / duplicate names)

    def transform(table: pa.Table, offset: int, index: int) -> tuple[pa.Table, int]:
        return table.rename_columns([mapping.get(c, c) for c in table.column_names]), table.num_rows

    renames = {new: old for old, new in mapping.items()}
    return _Plan(transform, list(mapping), {"mapping": mapping}, renames)


_PLANS: list[tuple[type, Callable[..., _Plan]]] = [
    (_ValueFault, _value_plan),
    (DuplicateRows, _duplicate_plan),
    (ClassRemoval, _class_removal_plan),
    (Mislabel, _mislabel_plan),
    (LabelShuffle, _shuffle_plan),
    (DropColumn, _drop_plan),
    (RenameColumn, _rename_plan),
]
_STREAMABLE = tuple(kind for kind, _ in _PLANS)
