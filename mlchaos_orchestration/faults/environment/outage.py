"""``upstream_outage``: the source is missing, empty, truncated, late or erroring.

The session backs the target up before ``apply`` and restores it afterwards; this fault never
undoes itself. ``error`` on S3 / SQL changes nothing stored: readers' processes install the hook
spec returned by :meth:`UpstreamOutage.hook`.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import MlchaosError, TargetError
from mlchaos_orchestration.faults.base import ApplyContext, EnvironmentFault
from mlchaos_orchestration.faults.catalog import register

OutageMode = Literal["missing", "empty", "truncated", "late", "error"]

S3_ERROR_STATUS = {
    "InternalError": 500,
    "ServiceUnavailable": 503,
    "SlowDown": 503,
    "AccessDenied": 403,
    "NoSuchKey": 404,
    "NoSuchBucket": 404,
    "RequestTimeout": 400,
}


def backup_id_of(ctx: ApplyContext) -> str:
    """The session's backup id for the first target (set in ``ctx.extra`` before apply)."""
    backup_id = ctx.extra.get("backup_id")
    if not backup_id:
        raise MlchaosError("apply context has no backup_id (faults run through the session)")
    return str(backup_id)


def store_for(target: Target, ctx: ApplyContext) -> Any:
    """The concrete store for ``target`` (S3 honours the context's endpoint)."""
    from mlchaos_orchestration.stores.base import get_store

    if target.kind == "s3" and ctx.s3_endpoint_url:
        from mlchaos_orchestration.stores.s3 import S3Store

        return S3Store(endpoint_url=ctx.s3_endpoint_url)
    return get_store(target)


def _emptied(name: str, data: bytes) -> bytes:
    from mlchaos_orchestration.core.formats import detect_format, empty_like

    return empty_like(data, detect_format(name))


def _truncated(fraction: float, name: str, data: bytes) -> bytes:
    from mlchaos_orchestration.core.formats import detect_format, truncate

    return truncate(data, fraction, detect_format(name))


@register
class UpstreamOutage(EnvironmentFault):
    """Upstream source is missing, empty, truncated, late or erroring."""

    name: ClassVar[str] = "upstream_outage"

    target: str | dict[str, Any]
    mode: OutageMode = "missing"
    keep_fraction: float = Field(0.5, ge=0.0, le=1.0, description="rows kept when truncated")
    delay_s: float = Field(60.0, gt=0, description="seconds the source stays away when late")
    error_code: str = Field("InternalError", description="S3 error code when erroring")

    @field_validator("target")
    @classmethod
    def _parse_target(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        try:
            Target.parse(value)
        except (TargetError, ValueError) as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def target_obj(self) -> Target:
        return Target.parse(self.target)

    @property
    def hook_only(self) -> bool:
        return self.mode == "error" and self.target_obj.kind != "local"

    # ------------------------------------------------------------------ fault contract
    def backup_targets(self, ctx: ApplyContext) -> list[Target]:
        return [] if self.hook_only else [self.target_obj]

    def touched_targets(self, ctx: ApplyContext) -> list[Target]:
        return [self.target_obj]

    def restore_after_s(self) -> float | None:
        return self.delay_s if self.mode == "late" else None

    def hook(self, ctx: ApplyContext) -> dict[str, Any] | None:
        if not self.hook_only:
            return None
        target = self.target_obj
        if target.kind == "s3":
            return {
                "kind": "s3_error",
                "bucket": target.bucket,
                "prefix": target.key,
                "code": self.error_code,
                "status": S3_ERROR_STATUS.get(self.error_code, 500),
            }
        return {"kind": "sql_error", "url": target.redacted_location(), "table": target.table}

    def apply(self, ctx: ApplyContext) -> dict[str, Any]:
        if self.hook_only:
            return {"mode": self.mode, "hook": True}
        target = self.target_obj
        store = store_for(target, ctx)
        if not store.exists(target):
            raise TargetError(f"{target.describe()}: nothing to fault, the target does not exist")
        apply_kind = {"local": self._apply_files, "s3": self._apply_files, "sql": self._apply_sql}
        return {"mode": self.mode, **apply_kind[target.kind](store, target, ctx)}

    # ------------------------------------------------------------------ per kind
    def _apply_files(self, store: Any, target: Target, ctx: ApplyContext) -> dict[str, Any]:
        if self.mode in ("missing", "late"):
            store.remove(target)
            return {"removed": True}
        if self.mode == "error":
            return {"replaced_by": store.swap_kind(target)}
        transform = (
            _emptied if self.mode == "empty" else functools.partial(_truncated, self.keep_fraction)
        )
        return {"files": store.rewrite(target, transform)}

    def _apply_sql(self, store: Any, target: Target, ctx: ApplyContext) -> dict[str, Any]:
        from mlchaos_orchestration.core.formats import keep_rows

        backup_id = backup_id_of(ctx)
        if self.mode in ("missing", "late") and not target.where:
            return {"stashed_as": store.stash(target, backup_id)}
        if self.mode in ("missing", "late", "empty"):  # a partition goes missing = its rows go
            return {"rows_deleted": store.delete_rows(target)}
        keep = keep_rows(store.count(target), self.keep_fraction)
        store.keep_first(target, backup_id, keep)
        return {"rows_kept": keep}
