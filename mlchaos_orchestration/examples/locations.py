"""Where the example pipeline's data lives, from env vars with embedded defaults under
``MLCHAOS_HOME`` (SQLite feature DB, local directories standing in for S3)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlchaos_orchestration.settings import get_settings

DEFAULT_DS = "2026-11-20"
DEMO_DAYS = 5
ROWS_PER_DAY = 2000
DATA_SEED = 42


@dataclass(frozen=True)
class ExampleConfig:
    """Locations of the example pipeline: raw events root, feature DB URL, model registry
    (``model_dir``: the file registry, used without MLflow; ``mlflow_uri``: the MLflow tracking
    store, default SQLite next to ``model_dir``)."""

    raw_root: str
    features_url: str
    model_dir: str
    ds: str = DEFAULT_DS
    mlflow_uri: str = ""
    online_store_url: str = ""  # Redis feature store filled after the gate (game day); optional

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking store (also the model registry) of the example."""
        return self.mlflow_uri or f"sqlite:///{Path(self.model_dir).parent / 'mlflow.db'}"

    @classmethod
    def from_env(cls) -> ExampleConfig:
        home = get_settings().data_dir / "example"
        return cls(
            raw_root=os.environ.get("MLCHAOS_RAW_ROOT") or str(home / "raw" / "events"),
            features_url=os.environ.get("MLCHAOS_FEATURES_URL")
            or f"sqlite:///{home / 'features.db'}",
            model_dir=os.environ.get("MLCHAOS_MODEL_DIR") or str(home / "models"),
            ds=os.environ.get("MLCHAOS_DS") or DEFAULT_DS,
            mlflow_uri=os.environ.get("MLCHAOS_MLFLOW_URI") or "",
            online_store_url=os.environ.get("MLCHAOS_ONLINE_STORE_URL") or "",
        )

    def export(self) -> dict[str, str]:
        """The env vars that reproduce this config in another process."""
        out = {
            "MLCHAOS_RAW_ROOT": self.raw_root,
            "MLCHAOS_FEATURES_URL": self.features_url,
            "MLCHAOS_MODEL_DIR": self.model_dir,
            "MLCHAOS_DS": self.ds,
            "MLCHAOS_MLFLOW_URI": self.tracking_uri,
        }
        if self.online_store_url:
            out["MLCHAOS_ONLINE_STORE_URL"] = self.online_store_url
        return out


def prepare(
    config: ExampleConfig,
    *,
    days: int = DEMO_DAYS,
    rows_per_day: int = ROWS_PER_DAY,
    seed: int = DATA_SEED,
    client: object = None,
    registry: bool = True,
) -> list[str]:
    """Write the seeded sample partitions ending at ``config.ds`` (idempotent: same bytes) and,
    with ``registry`` when MLflow is installed, the model history
    (:func:`~.model_registry.prepare_registry`: two promoted versions and a candidate; nothing
    when the model is registered already)."""
    import datetime as dt

    from mlchaos_orchestration.examples.sample_data import write_partitions

    local = not config.raw_root.startswith("s3://")
    if local:
        Path(config.raw_root).mkdir(parents=True, exist_ok=True)
    start = dt.date.fromisoformat(config.ds) - dt.timedelta(days=days - 1)
    written = write_partitions(config.raw_root, start, days, rows_per_day, seed, client=client)
    from mlchaos_orchestration.examples import model_registry

    if registry and model_registry.mlflow_available():
        model_registry.prepare_registry(config, days=min(days, 3), client=client)
    return written
