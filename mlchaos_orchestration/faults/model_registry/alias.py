"""``alias_moved`` and ``stale_model``: the alias the consumer loads points somewhere else."""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

from pydantic import Field

from mlchaos_orchestration.errors import TargetError
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.faults.model_registry.base import RegistryFault

VALIDATED_TAG = "validation_status"
VALIDATED_VALUE = "passed"


@register
class AliasMoved(RegistryFault):
    """The alias points to an older or an unvalidated version of the model."""

    name: ClassVar[str] = "alias_moved"

    to: Literal["previous", "unvalidated"] | int = Field(
        "previous",
        description="previous: the newest version below the current one; unvalidated: the "
        "newest other version without the validated tag; or a version number",
    )
    validated_tag: str = VALIDATED_TAG

    def apply(self, ctx: ApplyContext) -> dict[str, Any]:
        client = self.client()
        was = self.in_use(client)
        others = [v for v in self.versions(client) if int(v.version) != int(was.version)]
        if isinstance(self.to, int):
            chosen = [v for v in others if int(v.version) == self.to]
        elif self.to == "previous":
            chosen = [v for v in others if int(v.version) < int(was.version)]
        else:
            chosen = [v for v in others if v.tags.get(self.validated_tag) != VALIDATED_VALUE]
        if not chosen:
            raise TargetError(f"{self.model}: no version matches to={self.to!r}")
        return {**self.move_alias(client, chosen[-1], was), "to": str(self.to)}


@register
class StaleModel(RegistryFault):
    """The alias points to the oldest version, or the newest one older than N days."""

    name: ClassVar[str] = "stale_model"

    older_than_days: float | None = Field(
        None, ge=0, description="pick the newest version at least this old; default: the oldest"
    )

    def apply(self, ctx: ApplyContext) -> dict[str, Any]:
        client = self.client()
        was = self.in_use(client)
        versions = self.versions(client)
        if self.older_than_days is not None:
            cutoff_ms = (time.time() - self.older_than_days * 86400) * 1000
            versions = [v for v in versions if v.creation_timestamp <= cutoff_ms]
        if not versions:
            raise TargetError(f"{self.model}: no version older than {self.older_than_days} days")
        chosen = versions[-1] if self.older_than_days is not None else versions[0]
        age_days = (time.time() * 1000 - chosen.creation_timestamp) / 86_400_000
        return {**self.move_alias(client, chosen, was), "age_days": round(age_days, 3)}
