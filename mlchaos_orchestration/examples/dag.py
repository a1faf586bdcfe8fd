"""Production-like daily feature pipeline, carrying a dormant mlchaos task group.

raw events (``ds=YYYY-MM-DD/`` partitions in a local dir or ``s3://``) -> ingest -> build_features
(SQL table ``features``, SQLite by default, PostgreSQL when ``MLCHAOS_FEATURES_URL`` says so) ->
validate_features (GX gate) -> train_model (scikit-learn) -> register_model (MLflow, promotion
gate, alias) -> serve_batch (the champion, loaded by alias).

Configuration comes from env vars at run time (``MLCHAOS_RAW_ROOT``, ``MLCHAOS_FEATURES_URL``,
``MLCHAOS_MODEL_DIR``, defaults under ``MLCHAOS_HOME``). Data passes between tasks through storage
(a staging parquet file, the features table, a staged model file), never through big XComs.
Every failure alerts through :class:`MlchaosWebhookNotifier`. Chaos runs are triggered with
``{"mlchaos": {"experiment": "<name in experiments.yaml>"}}`` as the run's conf.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from mlchaos_orchestration.airflow import MlchaosWebhookNotifier, add_chaos
from mlchaos_orchestration.airflow.gate import GreatExpectationsGateOperator
from mlchaos_orchestration.airflow.params import export_example_defaults
from mlchaos_orchestration.examples import GATE_SUITE_PATH
from mlchaos_orchestration.examples.locations import ExampleConfig

DAG_ID = "feature_pipeline"
EXPERIMENTS_FILE = str(Path(__file__).with_name("experiments.yaml"))


def _config() -> ExampleConfig:
    return ExampleConfig.from_env()


# the defaults are exported so ${MLCHAOS_RAW_ROOT} / ${MLCHAOS_FEATURES_URL} in experiments agree
export_example_defaults()


def _staging(ds: str) -> Path:
    from mlchaos_orchestration.settings import get_settings

    path = get_settings().data_dir / "example" / "staging" / ds
    path.mkdir(parents=True, exist_ok=True)
    return path


def _put(ds: str, name: str, data: bytes) -> None:
    """Stage ``name`` of run date ``ds``: under ``$MLCHAOS_STAGING_URL`` (``s3://bucket/prefix``,
    for workers on separate hosts) when set, else in the local data dir."""
    url = os.environ.get("MLCHAOS_STAGING_URL", "")
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        key = "/".join(p for p in (prefix.strip("/"), ds, name) if p)
        _s3_client(url).put_object(Bucket=bucket, Key=key, Body=data)
    else:
        (_staging(ds) / name).write_bytes(data)


def _get(ds: str, name: str) -> bytes:
    """What :func:`_put` staged."""
    url = os.environ.get("MLCHAOS_STAGING_URL", "")
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        key = "/".join(p for p in (prefix.strip("/"), ds, name) if p)
        return bytes(_s3_client(url).get_object(Bucket=bucket, Key=key)["Body"].read())
    return (_staging(ds) / name).read_bytes()


def _s3_client(root: str) -> Any:
    if not root.startswith("s3://"):
        return None
    import boto3

    from mlchaos_orchestration.settings import get_settings

    return boto3.client("s3", endpoint_url=get_settings().s3_endpoint_url)


def features_target() -> dict[str, Any]:
    """Where data faults act: the run date's partition of the features table."""
    # a reference, not the URL: a password in MLCHAOS_FEATURES_URL never reaches the ledger
    return {"url": "${MLCHAOS_FEATURES_URL}", "table": "features", "where": {"ds": "{ds}"}}


def _ds(context: Any = None) -> str:
    """The partition a run works on: its logical date, else the day it was due."""
    from airflow.sdk import get_current_context

    from mlchaos_orchestration.airflow.context import run_date

    return str(run_date(context or get_current_context()))


def load_features(context: Any) -> Any:
    """The gate's input: the run date's partition of the features table."""
    from mlchaos_orchestration.examples.steps import read_features

    return read_features(_config().features_url, ds=_ds(context))


with DAG(
    dag_id=DAG_ID,
    schedule="@daily",
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": MlchaosWebhookNotifier()},
    tags=["mlchaos", "example"],
    doc_md=__doc__,
) as dag:

    @task
    def ingest() -> dict[str, Any]:
        """Read the day's raw partition (falls back to the last available one, on purpose)."""
        from mlchaos_orchestration.examples.steps import ingest as read

        cfg, ds = _config(), _ds()
        frame = read(cfg.raw_root, ds, client=_s3_client(cfg.raw_root), retry_delay_s=0.05)
        _put(ds, "events.parquet", frame.to_parquet(index=False))
        return {"rows": int(len(frame)), "source_ds": frame.attrs.get("source_ds")}

    @task
    def build_features() -> int:
        """Build features from the staged events into the features table."""
        import pandas as pd

        from mlchaos_orchestration.examples.steps import build_features as build
        from mlchaos_orchestration.examples.steps import write_features

        ds = _ds()
        events = pd.read_parquet(io.BytesIO(_get(ds, "events.parquet")))
        return write_features(build(events), _config().features_url, ds=ds)

    validate = GreatExpectationsGateOperator(
        task_id="validate_features",
        suite=str(GATE_SUITE_PATH),
        loader=load_features,
        profile_hints={"key": "event_id", "label": "is_fraud", "timestamp_column": "event_ts"},
    )

    @task
    def train_model() -> dict[str, Any]:
        """Train on the validated features; stage the model for registration."""
        import joblib

        from mlchaos_orchestration.examples.steps import read_features, train

        ds = _ds()
        model, metrics = train(read_features(_config().features_url, ds=ds))
        buf = io.BytesIO()
        joblib.dump((model, metrics), buf)
        _put(ds, "model.joblib", buf.getvalue())
        return metrics

    @task
    def register_model() -> dict[str, Any]:
        """Register the staged model in MLflow and promote it through the promotion gate (else
        the next version of the file registry)."""
        import joblib

        from mlchaos_orchestration.examples.model_registry import register_step
        from mlchaos_orchestration.examples.steps import read_features

        cfg, ds = _config(), _ds()
        model, metrics = joblib.load(io.BytesIO(_get(ds, "model.joblib")))
        return register_step(model, metrics, read_features(cfg.features_url, ds=ds), cfg, ds=ds)

    @task
    def serve_batch() -> dict[str, Any]:
        """Score the day's features with the champion, loaded by alias (serving contract)."""
        from mlchaos_orchestration.examples.model_registry import serve_step
        from mlchaos_orchestration.examples.steps import read_features

        cfg = _config()
        return serve_step(read_features(cfg.features_url, ds=_ds()), cfg)

    @task
    def materialize_online_features() -> dict[str, Any]:
        """Publish the validated features to the online store (Redis) the prediction API reads;
        a no-op without ``MLCHAOS_ONLINE_STORE_URL``."""
        from mlchaos_orchestration.examples.steps import read_features
        from mlchaos_orchestration.gameday.materialize import materialize_step

        cfg = _config()
        return materialize_step(read_features(cfg.features_url, ds=_ds()), cfg.online_store_url)

    (ingest() >> build_features() >> validate >> train_model() >> register_model() >> serve_batch())
    validate >> materialize_online_features()

add_chaos(
    dag,
    experiments_file=EXPERIMENTS_FILE,
    before="ingest",
    gate="validate_features",
    consumer="train_model",
    data_target=features_target,
)
