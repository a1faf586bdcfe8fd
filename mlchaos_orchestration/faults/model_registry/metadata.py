"""``registry_metadata_missing``: the aliased version loses its signature, tags or metrics."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from mlchaos_orchestration.errors import TargetError
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.faults.model_registry.base import RegistryFault

Metadata = Literal["signature", "tags", "metrics", "description"]
DEFAULT_REMOVE: list[Metadata] = ["signature", "tags", "metrics"]


@register
class RegistryMetadataMissing(RegistryFault):
    """Signature, tags or metrics of the aliased version are removed from the registry."""

    name: ClassVar[str] = "registry_metadata_missing"

    remove: list[Metadata] = Field(default_factory=lambda: list(DEFAULT_REMOVE), min_length=1)

    def apply(self, ctx: ApplyContext) -> dict[str, Any]:
        client = self.client()
        version = self.in_use(client)
        removed: dict[str, Any] = {}
        if "tags" in self.remove:
            for key in sorted(version.tags):
                client.delete_model_version_tag(self.model, version.version, key)
            removed["tags"] = sorted(version.tags)
        if "description" in self.remove:
            client.update_model_version(self.model, version.version, description="")
            removed["description"] = bool(version.description)
        if "metrics" in self.remove:
            removed["metrics"] = self._drop_metrics(version.run_id)
        if "signature" in self.remove:
            removed["signature"] = self._drop_signature(int(version.version))
        return {
            "model": self.model,
            "alias": self.alias,
            "version": int(version.version),
            **removed,
        }

    def _drop_metrics(self, run_id: str | None) -> int:
        """Delete the run's metric rows (no MLflow API deletes a metric); return rows deleted."""
        import sqlalchemy as sa

        from mlchaos_orchestration.stores.mlflow_registry import RUN_TABLES
        from mlchaos_orchestration.stores.sql import sql_engine

        if not run_id:
            return 0
        deleted = 0
        with sql_engine(self.registry_target().connect_url()) as engine, engine.begin() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for name, column in RUN_TABLES:
                if name in present:
                    table = sa.Table(name, sa.MetaData(), autoload_with=conn)
                    deleted += conn.execute(
                        sa.delete(table).where(table.c[column] == run_id)
                    ).rowcount
        return int(deleted)

    def _drop_signature(self, version: int) -> bool:
        """Rewrite the version's MLmodel without ``signature``; False if it had none."""
        from mlchaos_orchestration.faults.model_registry.signature import (
            read_mlmodel,
            write_mlmodel,
        )
        from mlchaos_orchestration.stores.base import get_store
        from mlchaos_orchestration.stores.mlflow_registry import MLMODEL, model_dir

        target = self.registry_target()
        rows = get_store(target).scope(target)["model_versions"]  # type: ignore[attr-defined]
        row = next(r for r in rows if int(r["version"]) == version)
        folder = model_dir(row)
        if folder is None or not (folder / MLMODEL).exists():
            raise TargetError(f"{self.model} v{version}: model files are not on local disk")
        mlmodel = read_mlmodel(folder / MLMODEL)
        had = mlmodel.pop("signature", None) is not None
        if had:
            write_mlmodel(folder / MLMODEL, mlmodel)
        return had
