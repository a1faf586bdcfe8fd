"""The production-like example pipeline as Dagster assets (no chaos code in here).

daily partitioned ``raw_events`` -> ``features`` (a SQL table via :class:`FeatureTableIOManager`;
SQLite under ``MLCHAOS_HOME`` by default, PostgreSQL when ``MLCHAOS_FEATURES_URL`` says so) ->
blocking GX check ``validate_features`` -> ``train_model`` -> ``register_model`` (MLflow, promotion
gate) -> ``serve_batch`` (the champion by alias); after the gate, ``online_features`` fills the
Redis online store when ``MLCHAOS_ONLINE_STORE_URL`` is set. The steps are the
shared :mod:`mlchaos_orchestration.examples.steps` functions used by the Airflow example too.
"""

from pathlib import Path
from typing import Any

import dagster as dg

from mlchaos_orchestration.dagster import gx_blocking_check
from mlchaos_orchestration.examples import GATE_SUITE_PATH
from mlchaos_orchestration.examples.locations import ExampleConfig

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01")


class ExampleLocations(dg.ConfigurableResource):
    """Where the raw events live and where models are registered."""

    raw_root: str
    model_dir: str
    mlflow_uri: str = ""
    online_store_url: str = ""

    def config(self, ds: str) -> ExampleConfig:
        """These locations as the example config of day ``ds`` (features are not needed)."""
        return ExampleConfig(
            self.raw_root, "", self.model_dir, ds, self.mlflow_uri, self.online_store_url
        )


class FeatureTableIOManager(dg.ConfigurableIOManager):
    """Stores a partition's features in a SQL table (one ``ds`` partition column)."""

    url: str
    table: str = "features"

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        from mlchaos_orchestration.examples.steps import write_features

        rows = write_features(obj, self.url, self.table, ds=context.partition_key)
        context.add_output_metadata({"rows": rows, "table": self.table})

    def load_input(self, context: dg.InputContext) -> Any:
        from mlchaos_orchestration.examples.steps import read_features

        return read_features(self.url, self.table, ds=context.partition_key)


@dg.asset(partitions_def=PARTITIONS, group_name="fraud_model")
def raw_events(context: dg.AssetExecutionContext, locations: ExampleLocations) -> Any:
    """The day's raw payment events (falls back to the last partition when one is missing)."""
    from mlchaos_orchestration.examples.steps import ingest

    frame = ingest(locations.raw_root, context.partition_key, retry_delay_s=0.05)
    context.add_output_metadata(
        {"rows": len(frame), "source_ds": str(frame.attrs.get("source_ds", ""))}
    )
    return frame


@dg.asset(partitions_def=PARTITIONS, group_name="fraud_model", io_manager_key="features_io")
def features(raw_events: Any) -> Any:
    """Model features of the day's events, stored in the features table."""
    from mlchaos_orchestration.examples.steps import build_features

    return build_features(raw_events)


validate_features = gx_blocking_check(features, GATE_SUITE_PATH, name="validate_features")


@dg.asset(partitions_def=PARTITIONS, group_name="fraud_model")
def train_model(context: dg.AssetExecutionContext, features: Any) -> Any:
    """A fraud classifier trained on the day's features (model, metrics)."""
    from mlchaos_orchestration.examples.steps import train

    model, metrics = train(features)
    context.add_output_metadata({k: v for k, v in metrics.items() if k in ("auc", "n_train")})
    return model, metrics


@dg.asset(partitions_def=PARTITIONS, group_name="fraud_model")
def register_model(
    context: dg.AssetExecutionContext, train_model: Any, features: Any, locations: ExampleLocations
) -> dict[str, Any]:
    """The model registered in MLflow and promoted through the promotion gate (else the next
    version of the file registry)."""
    from mlchaos_orchestration.examples.model_registry import register_step

    model, metrics = train_model
    ds = context.partition_key
    return register_step(model, metrics, features, locations.config(ds), ds=ds)


@dg.asset(partitions_def=PARTITIONS, group_name="fraud_model", deps=[register_model])
def serve_batch(
    context: dg.AssetExecutionContext, features: Any, locations: ExampleLocations
) -> dict[str, Any]:
    """The day's features scored by the champion, loaded by alias (serving contract)."""
    from mlchaos_orchestration.examples.model_registry import serve_step

    return serve_step(features, locations.config(context.partition_key))


@dg.asset(partitions_def=PARTITIONS, group_name="fraud_model")
def online_features(features: Any, locations: ExampleLocations) -> dict[str, Any]:
    """The validated features materialized into the online store (Redis) the prediction API
    reads; a no-op without ``MLCHAOS_ONLINE_STORE_URL``."""
    from mlchaos_orchestration.gameday.materialize import materialize_step

    return materialize_step(features, locations.online_store_url)


def build_pipeline_defs(config: ExampleConfig | None = None) -> dg.Definitions:
    """The example pipeline's Definitions for ``config`` (default: from the environment)."""
    cfg = config or ExampleConfig.from_env()
    io_dir = str(Path(cfg.model_dir).parent / "dagster_io")
    return dg.Definitions(
        assets=[raw_events, features, train_model, register_model, serve_batch, online_features],
        asset_checks=[validate_features],
        resources={
            "locations": ExampleLocations(
                raw_root=cfg.raw_root,
                model_dir=cfg.model_dir,
                mlflow_uri=cfg.tracking_uri,
                online_store_url=cfg.online_store_url,
            ),
            "features_io": FeatureTableIOManager(url=cfg.features_url),
            "io_manager": dg.FilesystemIOManager(base_dir=io_dir),
        },
    )
