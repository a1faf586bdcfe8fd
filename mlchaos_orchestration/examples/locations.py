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
    """Locations of the example pipeline: raw events root, feature DB URL, model registry."""

    raw_root: str
    features_url: str
    model_dir: str
    ds: str = DEFAULT_DS

    @classmethod
    def from_env(cls) -> ExampleConfig:
        home = get_settings().data_dir / "example"
        return cls(
            raw_root=os.environ.get("MLCHAOS_RAW_ROOT") or str(home / "raw" / "events"),
            features_url=os.environ.get("MLCHAOS_FEATURES_URL")
            or f"sqlite:///{home / 'features.db'}",
            model_dir=os.environ.get("MLCHAOS_MODEL_DIR") or str(home / "models"),
            ds=os.environ.get("MLCHAOS_DS") or DEFAULT_DS,
        )

    def export(self) -> dict[str, str]:
        """The env vars that reproduce this config in another process."""
        return {
            "MLCHAOS_RAW_ROOT": self.raw_root,
            "MLCHAOS_FEATURES_URL": self.features_url,
            "MLCHAOS_MODEL_DIR": self.model_dir,
            "MLCHAOS_DS": self.ds,
        }


def prepare(
    config: ExampleConfig,
    *,
    days: int = DEMO_DAYS,
    rows_per_day: int = ROWS_PER_DAY,
    seed: int = DATA_SEED,
    client: object = None,
) -> list[str]:
    """Write the seeded sample partitions ending at ``config.ds`` (idempotent: same bytes)."""
    import datetime as dt

    from mlchaos_orchestration.examples.sample_data import write_partitions

    if not config.raw_root.startswith("s3://"):
        Path(config.raw_root).mkdir(parents=True, exist_ok=True)
    start = dt.date.fromisoformat(config.ds) - dt.timedelta(days=days - 1)
    return write_partitions(config.raw_root, start, days, rows_per_day, seed, client=client)
