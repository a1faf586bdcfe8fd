"""What every registry fault shares: its target (``mlflow://<model>@<alias>`` in a tracking store),
the MLflow client, and moving an alias."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import TargetError
from mlchaos_orchestration.faults.base import ApplyContext, EnvironmentFault

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

PREFIX = "mlflow://"
NO_MLFLOW = (
    "MLflow is not installed (pip install 'mlchaos-orchestration[mlflow]'): there is no model "
    "registry to fault (the example registers to its file registry without it)"
)


class RegistryFault(EnvironmentFault):
    """Base of registry faults: one registered model and the alias its consumers load."""

    target: str | None = Field(
        None, description="mlflow://<model>@<alias>: shorthand for model and alias"
    )
    model: str = Field("", description="registered model name (or give target)")
    alias: str = Field("champion", min_length=1, description="alias the consumer loads")
    tracking_uri: str | None = Field(
        None,
        description="SQL tracking store URI (${VAR}s allowed); default $MLFLOW_TRACKING_URI or "
        "sqlite:///$MLCHAOS_HOME/mlflow.db",
    )

    @model_validator(mode="before")
    @classmethod
    def _split_target(cls, data: Any) -> Any:
        """``target: mlflow://<model>@<alias>`` is shorthand for ``model`` + ``alias``."""
        if isinstance(data, dict) and data.get("target") is not None:
            data = dict(data)
            text = str(data["target"])
            if not text.startswith(PREFIX) or len(text) <= len(PREFIX):
                raise ValueError(f"registry target must look like {PREFIX}<model>@<alias>")
            model, _, alias = text[len(PREFIX) :].partition("@")
            data.setdefault("model", model)
            if alias:
                data.setdefault("alias", alias)
        return data

    @model_validator(mode="after")
    def _named(self) -> RegistryFault:
        if not self.model:
            raise ValueError("give target: mlflow://<model>@<alias> or model")
        return self

    def registry_target(self) -> Target:
        from mlchaos_orchestration.stores.mlflow_registry import default_tracking_uri

        return Target(
            kind="mlflow", location=self.tracking_uri or default_tracking_uri(), table=self.model
        )

    def backup_targets(self, ctx: ApplyContext) -> list[Target]:
        import importlib.util

        if importlib.util.find_spec("mlflow") is None:  # before anything is backed up
            raise TargetError(NO_MLFLOW)
        return [self.registry_target()]

    def client(self) -> MlflowClient:
        """An MLflow client on the target's tracking store (also its registry)."""
        from mlflow import MlflowClient

        uri = self.registry_target().connect_url()
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def in_use(self, client: MlflowClient) -> ModelVersion:
        """The version the alias points to now."""
        from mlflow.exceptions import MlflowException

        try:
            return client.get_model_version_by_alias(self.model, self.alias)
        except MlflowException as exc:
            raise TargetError(f"{self.model}@{self.alias}: {exc.message}") from None

    def versions(self, client: MlflowClient) -> list[ModelVersion]:
        """Every version of the model, oldest first."""
        name = self.model.replace("'", "\\'")
        found = client.search_model_versions(f"name = '{name}'")
        return sorted(found, key=lambda v: int(v.version))

    def move_alias(
        self, client: MlflowClient, to: ModelVersion, was: ModelVersion
    ) -> dict[str, Any]:
        """Point the alias at ``to``; return the facts for the ``fault_applied`` event."""
        if int(to.version) == int(was.version):
            raise TargetError(f"{self.model}@{self.alias} already points to version {to.version}")
        client.set_registered_model_alias(self.model, self.alias, to.version)
        return {
            "model": self.model,
            "alias": self.alias,
            "from_version": int(was.version),
            "to_version": int(to.version),
        }
