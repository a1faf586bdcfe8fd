"""Settings: ``MLCHAOS_*`` environment variables first, then Airflow's ``[mlchaos]`` configuration
section (``AIRFLOW__MLCHAOS__<OPTION>`` or ``airflow.cfg``), then embedded defaults.

Inside Airflow processes (task, API server, DAG processor) the ``[mlchaos]`` section of
``airflow.cfg`` is read through Airflow's own configuration; elsewhere only its
``AIRFLOW__MLCHAOS__*`` environment form is, so that reading settings never imports Airflow.
"""

from __future__ import annotations

import os
import sys
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
    ``reports_location``  where suite reports go (a folder or ``s3://bucket/prefix``);
                          ``MLCHAOS_REPORTS_LOCATION`` (default: ``./reports``).
    ``alert_conn_id``     Airflow connection of the alert webhook; ``MLCHAOS_ALERT_CONN_ID``.

    Each also reads Airflow's ``[mlchaos]`` option of the same name (``home`` for ``data_dir``).
    """

    data_dir: Path
    ledger_url: str
    environment: str = "dev"
    allow_production: bool = False
    allowed_targets: tuple[str, ...] = field(default_factory=tuple)
    s3_endpoint_url: str | None = None
    default_ttl_s: float = 900.0
    reports_location: str | None = None
    alert_conn_id: str | None = None

    @property
    def is_production(self) -> bool:
        return self.environment.strip().lower() in PRODUCTION_NAMES

    @property
    def backup_dir(self) -> Path:
        return self.data_dir / "backups"


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


#: setting -> (MLCHAOS_* variable, option of Airflow's [mlchaos] section)
OPTIONS = {
    "home": ("MLCHAOS_HOME", "home"),
    "ledger_url": ("MLCHAOS_LEDGER_URL", "ledger_url"),
    "environment": ("MLCHAOS_ENVIRONMENT", "environment"),
    "allow_production": ("MLCHAOS_ALLOW_PRODUCTION", "allow_production"),
    "allowed_targets": ("MLCHAOS_ALLOWED_TARGETS", "allowed_targets"),
    "s3_endpoint_url": ("MLCHAOS_S3_ENDPOINT_URL", "s3_endpoint_url"),
    "default_ttl_s": ("MLCHAOS_DEFAULT_TTL_S", "default_ttl_s"),
    "reports_location": ("MLCHAOS_REPORTS_LOCATION", "reports_location"),
    "alert_conn_id": ("MLCHAOS_ALERT_CONN_ID", "alert_conn_id"),
}


def _airflow_option(option: str) -> str | None:
    """``[mlchaos] option`` from Airflow's configuration, only if Airflow is already loaded."""
    configuration = sys.modules.get("airflow.configuration")
    conf = getattr(configuration, "conf", None)
    if conf is None:
        return None
    try:
        value = conf.get("mlchaos", option, fallback=None)
    except Exception:  # noqa: BLE001 - a broken airflow.cfg must not break chaos settings
        return None
    return str(value) if value not in (None, "") else None


def _option(env: dict[str, str], name: str, *, airflow: bool) -> str | None:
    var, option = OPTIONS[name]
    value = env.get(var) or env.get(f"AIRFLOW__MLCHAOS__{option.upper()}")
    if value:
        return value
    return _airflow_option(option) if airflow else None


def get_settings(env: dict[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default ``os.environ``, then Airflow's ``[mlchaos]`` section)."""
    airflow = env is None
    env = dict(os.environ if env is None else env)

    def opt(name: str) -> str | None:
        return _option(env, name, airflow=airflow)

    data_dir = Path(opt("home") or Path.cwd() / ".mlchaos").expanduser().resolve()
    ledger_url = opt("ledger_url") or f"sqlite:///{data_dir / 'ledger.db'}"
    raw_allow = opt("allowed_targets") or ""
    allowed = tuple(p.strip() for p in raw_allow.split(",") if p.strip())
    ttl_raw = opt("default_ttl_s") or "900"
    try:
        ttl = float(ttl_raw)
    except ValueError:
        raise ConfigError(f"MLCHAOS_DEFAULT_TTL_S: not a number: {ttl_raw!r}") from None
    if not ttl > 0:
        raise ConfigError("MLCHAOS_DEFAULT_TTL_S: must be > 0")
    return Settings(
        data_dir=data_dir,
        ledger_url=ledger_url,
        environment=opt("environment") or "dev",
        allow_production=_bool(opt("allow_production")),
        allowed_targets=allowed,
        s3_endpoint_url=opt("s3_endpoint_url") or env.get("AWS_ENDPOINT_URL") or None,
        default_ttl_s=ttl,
        reports_location=opt("reports_location"),
        alert_conn_id=opt("alert_conn_id"),
    )
