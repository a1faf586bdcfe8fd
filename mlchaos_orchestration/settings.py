"""Settings from environment variables (``MLCHAOS_*``) with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlchaos_orchestration.errors import ConfigError

PRODUCTION_NAMES = frozenset({"prod", "production", "live"})


@dataclass(frozen=True)
class Settings:
    """Process-wide settings.

    ``data_dir``      project data dir (ledger file, local backups); ``MLCHAOS_HOME``.
    ``ledger_url``    SQLAlchemy URL of the ledger; ``MLCHAOS_LEDGER_URL``.
    ``environment``   name of this environment; ``MLCHAOS_ENVIRONMENT`` (``production`` is guarded).
    ``allow_production``  opt-in for a production environment; ``MLCHAOS_ALLOW_PRODUCTION=1``.
    ``allowed_targets``   allowlist of target prefixes; ``MLCHAOS_ALLOWED_TARGETS`` (comma list).
    ``s3_endpoint_url``   endpoint for boto3 (S3-compatible stores); ``MLCHAOS_S3_ENDPOINT_URL``.
    ``default_ttl_s``     lease TTL when an experiment sets none; ``MLCHAOS_DEFAULT_TTL_S``.
    """

    data_dir: Path
    ledger_url: str
    environment: str = "dev"
    allow_production: bool = False
    allowed_targets: tuple[str, ...] = field(default_factory=tuple)
    s3_endpoint_url: str | None = None
    default_ttl_s: float = 900.0

    @property
    def is_production(self) -> bool:
        return self.environment.strip().lower() in PRODUCTION_NAMES

    @property
    def backup_dir(self) -> Path:
        return self.data_dir / "backups"


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def get_settings(env: dict[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default ``os.environ``)."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("MLCHAOS_HOME") or Path.cwd() / ".mlchaos").expanduser().resolve()
    ledger_url = env.get("MLCHAOS_LEDGER_URL") or f"sqlite:///{data_dir / 'ledger.db'}"
    raw_allow = env.get("MLCHAOS_ALLOWED_TARGETS", "")
    allowed = tuple(p.strip() for p in raw_allow.split(",") if p.strip())
    ttl_raw = env.get("MLCHAOS_DEFAULT_TTL_S", "900")
    try:
        ttl = float(ttl_raw)
    except ValueError:
        raise ConfigError(f"MLCHAOS_DEFAULT_TTL_S: not a number: {ttl_raw!r}") from None
    if not ttl > 0:
        raise ConfigError("MLCHAOS_DEFAULT_TTL_S: must be > 0")
    return Settings(
        data_dir=data_dir,
        ledger_url=ledger_url,
        environment=env.get("MLCHAOS_ENVIRONMENT", "dev"),
        allow_production=_bool(env.get("MLCHAOS_ALLOW_PRODUCTION")),
        allowed_targets=allowed,
        s3_endpoint_url=env.get("MLCHAOS_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL") or None,
        default_ttl_s=ttl,
    )
