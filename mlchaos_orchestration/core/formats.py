"""Tabular file formats (csv, parquet, jsonl, json): detect, read, write, empty and truncate.

Inputs are raw bytes or a path; outputs are bytes, so the same helpers serve local files and S3
objects. pandas / pyarrow are imported inside the functions.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mlchaos_orchestration.errors import TargetError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

Format = Literal["csv", "parquet", "jsonl", "json"]
Source = bytes | str | os.PathLike[str]

_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}


def detect_format(name: str | os.PathLike[str]) -> Format:
    """The format of a file or object key, from its extension."""
    suffix = os.path.splitext(str(name).rstrip("/"))[1].lower()
    fmt = _EXTENSIONS.get(suffix)
    if fmt is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise TargetError(f"{os.fspath(name)}: unknown tabular format (expected one of {known})")
    return fmt


def _resolve(source: Source, fmt: Format | None) -> tuple[bytes, Format]:
    if isinstance(source, bytes):
        if fmt is None:
            raise TargetError("a format is needed to read raw bytes")
        return source, fmt
    return Path(source).read_bytes(), fmt or detect_format(source)


def read_frame(source: Source, fmt: Format | None = None) -> pd.DataFrame:
    """Read a DataFrame from bytes (``fmt`` required) or a path (format from its extension)."""
    import pandas as pd

    data, fmt = _resolve(source, fmt)
    buf = io.BytesIO(data)
    if fmt == "parquet":
        return pd.read_parquet(buf)
    if fmt == "csv":
        return pd.read_csv(buf)
    if not data.strip():
        return pd.DataFrame()
    return pd.read_json(buf, lines=fmt == "jsonl", orient="records")


def write_frame(frame: pd.DataFrame, fmt: Format) -> bytes:
    """Serialise a DataFrame in ``fmt`` (no index)."""
    if fmt == "parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue()
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    if fmt == "jsonl":
        return frame.to_json(orient="records", lines=True, date_format="iso").encode()
    return frame.to_json(orient="records", date_format="iso").encode()


def keep_rows(n: int, fraction: float) -> int:
    """Rows kept when truncating ``n`` rows to ``fraction`` (floor: < n whenever fraction < 1)."""
    if not 0.0 <= fraction <= 1.0:
        raise TargetError(f"keep fraction must be within [0, 1], got {fraction}")
    return min(n, math.floor(n * fraction))


def _jsonl_lines(data: bytes) -> list[bytes]:
    return [line for line in data.splitlines(keepends=True) if line.strip()]


def empty_like(source: Source, fmt: Format | None = None) -> bytes:
    """Same schema, zero rows: parquet keeps its Arrow schema, csv keeps only its header."""
    return truncate(source, 0.0, fmt)


def truncate(source: Source, fraction: float, fmt: Format | None = None) -> bytes:
    """The first ``floor(n * fraction)`` rows, same schema (parquet) / header (csv)."""
    data, fmt = _resolve(source, fmt)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        buf = io.BytesIO()
        pq.write_table(table.slice(0, keep_rows(table.num_rows, fraction)), buf)
        return buf.getvalue()
    if fmt == "jsonl":
        lines = _jsonl_lines(data)
        return b"".join(lines[: keep_rows(len(lines), fraction)])
    frame = _read_verbatim(data, fmt)
    head = frame.iloc[: keep_rows(len(frame), fraction)]
    if fmt == "csv":
        return head.to_csv(index=False).encode()
    return write_frame(head, fmt)


def _read_verbatim(data: bytes, fmt: Format) -> pd.DataFrame:
    """Read csv as strings (values written back unchanged) or json records."""
    import pandas as pd

    if fmt == "csv":
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    return read_frame(data, fmt)
