"""Safety guards: allowlisted targets only, no production unless opted in, no path escapes."""

from __future__ import annotations

import os
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from mlchaos_orchestration.core.targets import Target, database_identity
from mlchaos_orchestration.errors import SafetyError
from mlchaos_orchestration.settings import PRODUCTION_NAMES, Settings


class SafetySpec(BaseModel):
    """Per-experiment safety settings (merged with the process settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    ttl_s: float = Field(900.0, gt=0, le=7 * 86400, description="lease lifetime; restore after")
    allowed_targets: list[str] = Field(default_factory=list, max_length=1000)
    environment: str | None = Field(None, max_length=100)
    allow_production: bool = False
    alert_deadline_s: float = Field(
        300.0, gt=0, le=86400, description="an alert later than this counts as unalerted"
    )


def effective_allowlist(settings: Settings, spec: SafetySpec) -> list[str]:
    """Allowlist entries from the environment plus the experiment's own."""
    return [*settings.allowed_targets, *spec.allowed_targets]


def check_environment(settings: Settings, spec: SafetySpec) -> None:
    """Refuse to act in a production environment unless explicitly opted in."""
    env = (spec.environment or settings.environment or "").strip().lower()
    if env in PRODUCTION_NAMES or settings.is_production:
        if not (settings.allow_production and spec.allow_production):
            raise SafetyError(
                f"environment {env or settings.environment!r} is marked production: refused "
                "(opt in with MLCHAOS_ALLOW_PRODUCTION=1 and safety.allow_production: true)"
            )


def check_targets(targets: Iterable[Target], allowlist: list[str]) -> None:
    """Raise SafetyError unless every target lies inside an allowlisted location."""
    for target in targets:
        if not any(_allowed(target, entry) for entry in allowlist):
            if not allowlist:
                raise SafetyError(
                    f"target {target.describe()} refused: no allowed targets are configured "
                    "(set safety.allowed_targets or MLCHAOS_ALLOWED_TARGETS)"
                )
            raise SafetyError(f"target {target.describe()} is not in the allowlist")


def _allowed(target: Target, entry: str) -> bool:
    entry = entry.strip()
    if not entry:
        return False
    if target.kind == "s3":
        if not entry.startswith("s3://") or ".." in target.key.split("/"):
            return False
        return _prefix_match(target.location, entry)
    if target.kind == "sql":
        if "#" not in entry or "://" not in entry:
            return False
        url, table = entry.rsplit("#", 1)
        same_db = database_identity(url) == target.database_identity()
        return same_db and table in ("*", target.table)
    if "://" in entry:
        return False
    return _local_inside(target.location, entry)


def _prefix_match(location: str, entry: str) -> bool:
    if location == entry or location.rstrip("/") == entry.rstrip("/"):
        return True
    base = entry if entry.endswith("/") else entry + "/"
    if entry.count("/") <= 2:  # s3://bucket
        base = entry.rstrip("/") + "/"
    return location.startswith(base)


def _local_inside(path: str, entry: str) -> bool:
    """True if ``path`` is inside directory ``entry`` without symlinks or ``..`` escaping it."""
    raw = os.path.abspath(os.path.expanduser(path))
    if ".." in path.replace("\\", "/").split("/"):
        return False
    root = os.path.realpath(os.path.expanduser(entry))
    real = os.path.realpath(raw)
    if os.path.islink(raw):
        return False  # never act through a symlink
    try:
        return os.path.commonpath([real, root]) == root
    except ValueError:
        return False
