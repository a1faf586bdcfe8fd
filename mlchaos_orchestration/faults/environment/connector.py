"""Connector failure: a seeded share of database statements/connections or S3 requests fail.

The fault changes no stored data; it takes effect through the in-process hooks
(:mod:`mlchaos_orchestration.interceptors`) that readers' processes install from the spec ``hook()``
returns. The spec is stored in the ledger, so it never carries a password.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.faults.base import ApplyContext, EnvironmentFault
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.interceptors.registry import MAX_LATENCY_MS

ENGINE_WIDE = "*"  # table of the SQL target: the whole database, not one table


@register
class ConnectorFailure(EnvironmentFault):
    """A seeded share of SQL statements/connections or S3 requests fail or slow down."""

    name: ClassVar[str] = "connector_failure"

    url: str | None = Field(None, description="SQLAlchemy URL of the database (password dropped)")
    s3: str | None = Field(None, description="s3://bucket/prefix whose requests fail")
    rate: float = Field(0.5, ge=0.0, le=1.0, description="share of calls that fail")
    on: list[Literal["connect", "execute"]] | None = Field(
        None, min_length=1, description="SQL only: where to fail (default both)"
    )
    latency_ms: float = Field(0.0, ge=0, le=MAX_LATENCY_MS, description="added per call")
    jitter_ms: float = Field(0.0, ge=0, le=MAX_LATENCY_MS, description="random extra latency")
    failure: Literal["throttle", "503", "timeout"] | None = Field(
        None, description="S3 only: how a request fails (default throttle)"
    )

    @field_validator("url")
    @classmethod
    def _redact_url(cls, value: str | None) -> str | None:
        """Keep only the redacted URL: matching ignores credentials, and specs are stored."""
        if value is None:
            return None
        from sqlalchemy.engine import make_url

        try:
            return make_url(value).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - any parse failure is a bad parameter
            raise ValueError("url is not a SQLAlchemy URL") from None

    @field_validator("s3")
    @classmethod
    def _parse_s3(cls, value: str | None) -> str | None:
        if value is not None:
            bucket = value[5:].split("/", 1)[0] if value.startswith("s3://") else ""
            if not bucket:
                raise ValueError("s3 must look like s3://bucket/prefix")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> ConnectorFailure:
        if (self.url is None) == (self.s3 is None):
            raise ValueError("give exactly one of url (SQL) or s3 (s3://bucket/prefix)")
        if self.s3 is not None and self.on is not None:
            raise ValueError("on applies to SQL (url) only")
        if self.url is not None and self.failure is not None:
            raise ValueError("failure applies to S3 (s3) only")
        return self

    def touched_targets(self, ctx: ApplyContext) -> list[Target]:
        """The database (every table) or the S3 prefix, so the allowlist applies."""
        if self.url is not None:
            return [Target(kind="sql", location=self.url, table=ENGINE_WIDE)]
        return [Target(kind="s3", location=str(self.s3))]

    def backup_targets(self, ctx: ApplyContext) -> list[Target]:
        return []

    def hook(self, ctx: ApplyContext) -> dict[str, Any]:
        """The hook spec (JSON, password redacted) readers install while the lease is active."""
        timing = {
            "rate": self.rate,
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "seed": ctx.seed,
        }
        if self.url is not None:
            return {
                "kind": "sql_failure",
                "url": self.url,
                "error": "OperationalError",
                "on": list(self.on or ["connect", "execute"]),
                **timing,
            }
        target = Target(kind="s3", location=str(self.s3))
        return {
            "kind": "s3_failure",
            "bucket": target.bucket,
            "prefix": target.key,
            "failure": self.failure or "throttle",
            **timing,
        }
