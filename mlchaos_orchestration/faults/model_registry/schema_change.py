"""``model_schema_change``: a new version whose signature differs takes the alias in use."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from mlchaos_orchestration.errors import TargetError
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.faults.model_registry.base import RegistryFault
from mlchaos_orchestration.faults.model_registry.signature import (
    SchemaChange,
    changed_signature,
    link_copy,
    read_mlmodel,
    write_mlmodel,
)


@register
class ModelSchemaChange(RegistryFault):
    """A new version with a different output schema is registered and aliased as the one in use."""

    name: ClassVar[str] = "model_schema_change"

    change: SchemaChange = Field(
        "output_type", description="output_type | output_name | drop_input"
    )
    copy_tags: bool = Field(
        True, description="the new version carries the in-use version's tags (validation too)"
    )

    def apply(self, ctx: ApplyContext) -> dict[str, Any]:
        from mlchaos_orchestration.stores.base import get_store
        from mlchaos_orchestration.stores.mlflow_registry import MLMODEL, model_dir

        client = self.client()
        was = self.in_use(client)
        store: Any = get_store(self.registry_target())
        row = next(
            r
            for r in store.scope(self.registry_target())["model_versions"]
            if int(r["version"]) == int(was.version)
        )
        src = model_dir(row)
        if src is None or not (src / MLMODEL).exists():
            raise TargetError(f"{self.model} v{was.version}: model files are not on local disk")
        mlmodel = read_mlmodel(src / MLMODEL)
        if not mlmodel.get("signature"):
            raise TargetError(f"{self.model} v{was.version} has no signature to change")
        dst = store.scratch_dir(ctx.extra["backup_id"]) / f"v{was.version}-{self.change}"
        link_copy(src, dst)
        mlmodel["signature"] = changed_signature(mlmodel["signature"], self.change)
        write_mlmodel(dst / MLMODEL, mlmodel)
        new = client.create_model_version(
            self.model,
            source=str(dst),
            run_id=was.run_id,
            tags=dict(was.tags) if self.copy_tags else None,
            description=was.description,
        )
        return {**self.move_alias(client, new, was), "change": self.change}
