"""Steps of the example production-like pipeline, as plain functions (no orchestrator).

``ingest -> build_features -> write_features / read_features -> (gate) -> train ->
register_model``. The Airflow example DAG and the Dagster example Definitions wrap these.

Realistic weakness, on purpose: :func:`ingest` swallows a *missing* partition. After its retries
it falls back to the most recent earlier partition and only logs a warning ("using last available
partition"). Real pipelines do this to "stay green"; it means an upstream outage that deletes or
delays today's file is not seen by the gate (the rows look fine, they are just yesterday's), so
such outages come out ``silent`` unless a check compares the data's dates with the run date.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlchaos_orchestration.examples.sample_data import partition_key

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from sqlalchemy.engine import Engine

__all__ = [
    "FEATURE_COLUMNS",
    "LABEL",
    "build_features",
    "ingest",
    "read_features",
    "register_model",
    "train",
    "write_features",
]

log = logging.getLogger(__name__)

LABEL = "is_fraud"
WRITE_BATCH_ROWS = 250
CATEGORICAL = ["country", "device"]
NUMERIC = ["amount_log", "age", "account_age_days", "n_tx_24h", "is_night"]
FEATURE_COLUMNS = [
    "event_id",
    "user_id",
    "event_ts",
    "amount",
    "amount_log",
    "age",
    "account_age_days",
    "n_tx_24h",
    "is_night",
    *CATEGORICAL,
    LABEL,
]
_DS_RE = re.compile(r"ds=(\d{4}-\d{2}-\d{2})/?$")


# ------------------------------------------------------------------------------------------ ingest
def ingest(
    raw_root: str | Path,
    ds: str,
    *,
    retries: int = 3,
    client: Any = None,
    retry_delay_s: float = 0.2,
) -> pd.DataFrame:
    """Read the raw events partition of day ``ds`` from a directory or ``s3://bucket/prefix``.

    A missing partition is retried ``retries`` times, then (weakness kept on purpose, see the
    module docstring) replaced by the most recent earlier partition with a warning. Other read
    errors (empty or truncated file) are retried and then raised. The day actually read is in
    ``frame.attrs["source_ds"]``.
    """
    for attempt in range(retries + 1):
        try:
            return _read_partition(raw_root, ds, client)
        except FileNotFoundError:
            failure: Exception | None = None
        except Exception as exc:  # noqa: BLE001 - a flaky read is retried like real loaders do
            failure = exc
        if attempt < retries:
            log.info(
                "partition ds=%s not readable (attempt %d/%d), retrying",
                ds,
                attempt + 1,
                retries + 1,
            )
            time.sleep(retry_delay_s * (2**attempt))
    if failure is not None:
        raise failure
    earlier = [d for d in list_partitions(raw_root, client=client) if d < ds]
    if not earlier:
        raise FileNotFoundError(f"no partition ds={ds} (nor any earlier one) under {raw_root}")
    log.warning(
        "partition ds=%s missing after %d retries; using last available partition ds=%s",
        ds,
        retries,
        earlier[-1],
    )
    return _read_partition(raw_root, earlier[-1], client)


def list_partitions(raw_root: str | Path, *, client: Any = None) -> list[str]:
    """Sorted ``YYYY-MM-DD`` days that have a ``ds=`` folder under ``raw_root``."""
    root = str(raw_root)
    if root.startswith("s3://"):
        bucket, prefix = _split_s3(root)
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix + "ds=", Delimiter="/"
        )
        names = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    else:
        path = Path(root)
        names = [p.name for p in path.iterdir() if p.is_dir()] if path.is_dir() else []
    return sorted(m.group(1) for m in map(_DS_RE.search, names) if m)


def _read_partition(raw_root: str | Path, ds: str, client: Any) -> pd.DataFrame:
    import pandas as pd

    key = partition_key(ds)
    root = str(raw_root)
    if root.startswith("s3://"):
        if client is None:
            raise ValueError("an s3:// root needs a boto3 client")
        bucket, prefix = _split_s3(root)
        try:
            body = client.get_object(Bucket=bucket, Key=prefix + key)["Body"].read()
        except client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"s3://{bucket}/{prefix}{key}") from None
        frame = pd.read_parquet(io.BytesIO(body))
    else:
        frame = pd.read_parquet(Path(root) / key)
    frame.attrs["source_ds"] = ds
    return frame


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[5:].partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


# ---------------------------------------------------------------------------------------- features
def build_features(events: pd.DataFrame) -> pd.DataFrame:
    """Model features from raw events (vectorised); categorical columns stay strings."""
    import numpy as np

    hour = events["event_ts"].dt.hour
    features = events.assign(
        amount_log=np.log1p(events["amount"]),
        is_night=((hour < 6) | (hour >= 22)).astype("int64"),
    )
    return features[FEATURE_COLUMNS].reset_index(drop=True)


def write_features(
    df: pd.DataFrame, engine_or_url: Engine | str, table: str = "features", *, ds: str
) -> int:
    """Replace partition ``ds`` of ``table`` with ``df`` in one transaction; returns rows written.

    The table gets a ``ds`` text column (the partition column); it is created on first write.
    """
    import sqlalchemy as sa

    engine, owned = _engine(engine_or_url)
    try:
        with engine.begin() as conn:
            if sa.inspect(conn).has_table(table):
                conn.execute(
                    sa.text(f"DELETE FROM {_quote(engine, table)} WHERE ds = :ds"), {"ds": ds}
                )
            # batched inserts, as feature writers do: a flaky connector gets many chances
            df.assign(ds=ds).to_sql(
                table, conn, if_exists="append", index=False, chunksize=WRITE_BATCH_ROWS
            )
    finally:
        if owned:
            engine.dispose()
    return int(len(df))


def read_features(engine_or_url: Engine | str, table: str = "features", *, ds: str) -> pd.DataFrame:
    """Partition ``ds`` of ``table`` (without the ``ds`` column), ordered by ``event_id``."""
    import pandas as pd
    import sqlalchemy as sa

    engine, owned = _engine(engine_or_url)
    try:
        query = sa.text(f"SELECT * FROM {_quote(engine, table)} WHERE ds = :ds ORDER BY event_id")
        with engine.connect() as conn:
            frame = pd.read_sql(query, conn, params={"ds": ds}, parse_dates=["event_ts"])
    finally:
        if owned:
            engine.dispose()
    return frame.drop(columns=["ds"])


def _engine(engine_or_url: Engine | str) -> tuple[Engine, bool]:
    import sqlalchemy as sa

    if isinstance(engine_or_url, str):
        return sa.create_engine(engine_or_url), True
    return engine_or_url, False


def _quote(engine: Engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote(name)


# ------------------------------------------------------------------------------------------- model
def train(features: pd.DataFrame, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """Fit a seeded logistic regression on ``features``; metrics are from a 25% holdout.

    Raises ``ValueError`` when the label has a single class (nothing to learn).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = features[NUMERIC + CATEGORICAL], features[LABEL].astype("int64")
    if y.nunique() < 2:
        raise ValueError(f"label {LABEL!r} has a single class: nothing to learn")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), NUMERIC),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500, random_state=seed)),
        ]
    ).fit(x_train, y_train)
    proba = model.predict_proba(x_test)[:, 1]
    metrics = {
        "auc": round(float(roc_auc_score(y_test, proba)), 6),
        "accuracy": round(float(accuracy_score(y_test, proba >= 0.5)), 6),
        "log_loss": round(float(log_loss(y_test, proba)), 6),
        "positive_rate": round(float(y.mean()), 6),
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
    }
    return model, metrics


def register_model(model: Any, metrics: dict[str, Any], registry_dir: str | Path) -> Path:
    """Store ``model`` as the next version ``vNNNN/`` under ``registry_dir``; returns that dir.

    The artifact is joblib (pickle-based): fine for our own model, never for untrusted input.
    ``metrics.json`` sits next to it.
    """
    import joblib

    root = Path(registry_dir)
    root.mkdir(parents=True, exist_ok=True)
    versions = [int(p.name[1:]) for p in root.glob("v[0-9][0-9][0-9][0-9]") if p.is_dir()]
    target = root / f"v{max(versions, default=0) + 1:04d}"
    target.mkdir()
    joblib.dump(model, target / "model.joblib")
    (target / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return target
