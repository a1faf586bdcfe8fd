"""Model-registry faults on MLflow: what a consumer loading ``models:/<name>@<alias>`` meets.

- ``model_schema_change`` (:mod:`.schema_change`): a new version whose signature differs
  takes the alias;
- ``registry_metadata_missing`` (:mod:`.metadata`): signature / tags / metrics of the aliased
  version removed;
- ``alias_moved`` and ``stale_model`` (:mod:`.alias`): the alias points to an older, unvalidated or
  old-enough version.

Every fault backs up the whole registered model
(:mod:`mlchaos_orchestration.stores.mlflow_registry`) and is undone by restoring it exactly.
"""

from mlchaos_orchestration.faults.model_registry.alias import AliasMoved, StaleModel
from mlchaos_orchestration.faults.model_registry.metadata import RegistryMetadataMissing
from mlchaos_orchestration.faults.model_registry.schema_change import ModelSchemaChange

__all__ = ["AliasMoved", "ModelSchemaChange", "RegistryMetadataMissing", "StaleModel"]
