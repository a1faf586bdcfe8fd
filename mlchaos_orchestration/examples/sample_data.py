"""Seeded generator of daily-partitioned raw payment EVENTS for a fraud classifier.

Each day is generated from ``(seed, day ordinal)``, so a partition's content does not depend on
which other days are written; ``event_id`` is unique across days. Fraud (~10%) depends on the
features (large amounts, night time, new accounts, many recent transactions, some countries and
devices), so a model trained on clean data learns something and label faults hurt it.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["COUNTRIES", "DEVICES", "generate_events", "partition_key", "write_partitions"]

COUNTRIES = ("US", "DE", "FR", "GB", "IN", "BR")
_COUNTRY_P = (0.35, 0.15, 0.12, 0.13, 0.15, 0.10)
_COUNTRY_RISK = (0.0, -0.2, -0.1, -0.1, 0.5, 0.6)
DEVICES = ("mobile", "desktop", "tablet")
_DEVICE_P = (0.6, 0.3, 0.1)
_DEVICE_RISK = (0.3, 0.0, 0.1)
_IDS_PER_DAY = 10_000_000
_INTERCEPT = -3.95

Format = Literal["parquet", "csv"]


def generate_events(ds: str | dt.date, n_rows: int, seed: int) -> pd.DataFrame:
    """``n_rows`` events of day ``ds`` (``YYYY-MM-DD``), deterministic for ``(ds, seed)``."""
    import numpy as np
    import pandas as pd

    day = _as_date(ds)
    if not 0 <= n_rows < _IDS_PER_DAY:
        raise ValueError(f"n_rows must be in [0, {_IDS_PER_DAY}), got {n_rows}")
    rng = np.random.default_rng([seed, day.toordinal()])
    seconds = np.sort(rng.integers(0, 86_400, size=n_rows))
    hour = seconds // 3600
    amount = np.round(np.clip(rng.lognormal(3.6, 1.1, n_rows), 0.5, 50_000.0), 2)
    age = np.clip(np.round(rng.normal(41, 13, n_rows)), 18, 90).astype(np.int64)
    account_age = np.floor(rng.exponential(500, n_rows)).astype(np.int64)
    n_tx = rng.poisson(1.5, n_rows).astype(np.int64)
    country = rng.choice(len(COUNTRIES), size=n_rows, p=_COUNTRY_P)
    device = rng.choice(len(DEVICES), size=n_rows, p=_DEVICE_P)
    score = (
        _INTERCEPT
        + 0.9 * (np.log(amount) - 3.6)
        + 1.0 * ((hour < 6) | (hour >= 22))
        + 1.3 * (account_age < 30)
        + 0.35 * n_tx
        - 0.01 * (age - 41)
        + np.take(_COUNTRY_RISK, country)
        + np.take(_DEVICE_RISK, device)
    )
    is_fraud = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-score))).astype(np.int64)
    return pd.DataFrame(
        {
            "event_id": day.toordinal() * _IDS_PER_DAY + np.arange(n_rows, dtype=np.int64),
            "user_id": rng.integers(1, 50_000, size=n_rows, dtype=np.int64),
            "event_ts": pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s"),
            "amount": amount,
            "age": age,
            "account_age_days": account_age,
            "n_tx_24h": n_tx,
            "country": pd.Series(np.take(COUNTRIES, country), dtype="str"),
            "device": pd.Series(np.take(DEVICES, device), dtype="str"),
            "is_fraud": is_fraud,
        }
    )


def partition_key(ds: str | dt.date, fmt: Format = "parquet") -> str:
    """Relative path of a day's file: ``ds=YYYY-MM-DD/part-0.parquet``."""
    return f"ds={_as_date(ds).isoformat()}/part-0.{fmt}"


def write_partitions(
    root: str | Path,
    start_ds: str | dt.date,
    days: int,
    rows_per_day: int,
    seed: int,
    fmt: Format = "parquet",
    *,
    client: Any = None,
) -> list[str]:
    """Write ``days`` daily partitions under ``root`` (a directory or ``s3://bucket/prefix``).

    S3 roots need ``client`` (a boto3 S3 client). Returns the written paths / URIs. The bytes are
    deterministic for the same arguments.
    """
    start = _as_date(start_ds)
    written = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        payload = encode(generate_events(day, rows_per_day, seed), fmt)
        written.append(put_bytes(root, partition_key(day, fmt), payload, client=client))
    return written


def encode(frame: pd.DataFrame, fmt: Format = "parquet") -> bytes:
    """Serialise a frame to parquet (no index) or CSV bytes."""
    if fmt == "csv":
        return frame.to_csv(index=False).encode("utf-8")
    if fmt != "parquet":
        raise ValueError(f"unknown format {fmt!r} (parquet or csv)")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def put_bytes(root: str | Path, key: str, payload: bytes, *, client: Any = None) -> str:
    """Write ``payload`` at ``root/key`` (local or S3); returns the full path / URI."""
    root_text = str(root)
    if root_text.startswith("s3://"):
        if client is None:
            raise ValueError("an s3:// root needs a boto3 client")
        bucket, _, prefix = root_text[5:].partition("/")
        full_key = f"{prefix.rstrip('/')}/{key}" if prefix.strip("/") else key
        client.put_object(Bucket=bucket, Key=full_key, Body=payload)
        return f"s3://{bucket}/{full_key}"
    path = Path(root_text) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return str(path)


def _as_date(ds: str | dt.date) -> dt.date:
    if isinstance(ds, dt.datetime):
        return ds.date()
    if isinstance(ds, dt.date):
        return ds
    try:
        return dt.date.fromisoformat(str(ds))
    except ValueError:
        raise ValueError(f"ds must be YYYY-MM-DD, got {ds!r}") from None
