"""Storage backends: one module per target kind (local files, S3, SQL tables)."""

from __future__ import annotations

from mlchaos_orchestration.stores.base import Store, get_store

__all__ = ["Store", "get_store"]
