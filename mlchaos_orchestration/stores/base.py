"""The Store contract: byte-exact backup/restore plus the mutations environment faults use.

Crash-safety contract (the session relies on it):
- ``backup`` writes a *complete* copy before returning; a half-written backup is never reported.
- ``restore`` is idempotent and may be re-run after being killed at any point; it only trusts the
  backup copy, never the (possibly faulted) target.
- ``discard`` deletes a backup copy; it is only called after a verified restore.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from mlchaos_orchestration.core.targets import Target

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.settings import Settings


class Store(ABC):
    """I/O for one kind of target."""

    @abstractmethod
    def exists(self, target: Target) -> bool:
        """Whether the target currently exists."""

    @abstractmethod
    def checksum(self, target: Target) -> dict[str, str]:
        """Fingerprint of the target's content: ``{relative name: sha256}`` for files/objects, or
        ``{"rows": sha256 of the sorted row hashes, "count": n}`` for tables. ``{}`` if missing."""

    @abstractmethod
    def backup(self, target: Target, backup_id: str) -> dict[str, Any]:
        """Copy the target completely; return a JSON-serialisable reference to the copy."""

    @abstractmethod
    def restore(self, target: Target, ref: dict[str, Any]) -> None:
        """Make the target byte-identical to the backup ``ref`` (idempotent, crash-safe)."""

    @abstractmethod
    def discard(self, ref: dict[str, Any]) -> None:
        """Delete the backup copy named by ``ref`` (missing copy is fine)."""


def get_store(target: Target, settings: Settings | None = None) -> Store:
    """The store for ``target``'s kind, configured from ``settings``."""
    from mlchaos_orchestration.settings import get_settings

    settings = settings or get_settings()
    if target.kind == "local":
        from mlchaos_orchestration.stores.local import LocalStore

        return LocalStore(settings.backup_dir)
    if target.kind == "s3":
        from mlchaos_orchestration.stores.s3 import S3Store

        return S3Store(endpoint_url=settings.s3_endpoint_url)
    if target.kind == "mlflow":
        from mlchaos_orchestration.stores.mlflow_registry import MlflowRegistryStore

        return MlflowRegistryStore(settings.backup_dir)
    from mlchaos_orchestration.stores.sql import SqlStore

    return SqlStore()
