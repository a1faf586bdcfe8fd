"""``MlchaosResource``: the plugin's configuration as a Dagster resource.

Given to :func:`~.wrap.with_chaos` (or found among the Definitions' resources), it is listed on
Dagster's resources page with every field, secrets shown only as the name of their environment
variable (``dg.EnvVar``). Its values become the process's ``MLCHAOS_*`` settings
(:mod:`mlchaos_orchestration.settings`) when the Definitions are built, so every process that
loads the code location - code server, run worker, step processes, the daemon's sensors - uses
the same ledger, allowlist, environment and reports location. Like Airflow's ``[mlchaos]``
section, a set ``MLCHAOS_*`` variable wins over the resource (e.g. ``mlchaos suite`` giving its
workers the suite's ledger); a field left unset keeps what the environment says.

The alert webhook URL is a secret: it must be an ``EnvVar``; only the variable's name is passed
on (to the alert sensor), its value is read when an alert is posted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from mlchaos_orchestration.errors import ConfigError

#: resource key under which with_chaos registers the resource
RESOURCE_KEY = "mlchaos"

#: field -> MLCHAOS_* variable it sets
ENV_OF = {
    "home": "MLCHAOS_HOME",
    "ledger_url": "MLCHAOS_LEDGER_URL",
    "experiments_file": "MLCHAOS_EXPERIMENTS_FILE",
    "environment": "MLCHAOS_ENVIRONMENT",
    "allow_production": "MLCHAOS_ALLOW_PRODUCTION",
    "allowed_targets": "MLCHAOS_ALLOWED_TARGETS",
    "s3_endpoint_url": "MLCHAOS_S3_ENDPOINT_URL",
    "default_ttl_s": "MLCHAOS_DEFAULT_TTL_S",
    "reports_location": "MLCHAOS_REPORTS_LOCATION",
}


class MlchaosResource(dg.ConfigurableResource):
    """mlchaos settings of this Dagster deployment (unset fields: the ``MLCHAOS_*`` variables)."""

    ledger_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the chaos ledger; use EnvVar when it holds a password",
    )
    home: str | None = Field(default=None, description="data folder (local backups, ledger)")
    experiments_file: str | None = Field(
        default=None, description="the deployment's experiments file (trusted matrix)"
    )
    allowed_targets: list[str] | None = Field(
        default=None, description="allowlist of target prefixes faults may touch"
    )
    environment: str | None = Field(
        default=None, description="name of this environment (production is guarded)"
    )
    allow_production: bool | None = Field(
        default=None, description="opt in to chaos in a production environment"
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint")
    default_ttl_s: float | None = Field(
        default=None, description="lease TTL (s) when an experiment sets none"
    )
    reports_location: str | None = Field(
        default=None, description="where resilience reports are published (folder or s3://)"
    )
    alert_webhook_url: str | None = Field(
        default=None,
        description="alert webhook URL: EnvVar('NAME') only (a secret); posted by the sensor",
    )

    def settings_env(self) -> dict[str, str]:
        """The ``MLCHAOS_*`` variables this resource sets (EnvVar fields resolved now).

        Raises ConfigError (one line) for an EnvVar whose variable is not set."""
        out: dict[str, str] = {}
        for name, var in ENV_OF.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, dg.EnvVar):
                resolved = os.environ.get(value.env_var_name)
                if resolved is None:
                    raise ConfigError(
                        f"MlchaosResource.{name}: environment variable "
                        f"{value.env_var_name} is not set"
                    )
                value = resolved
            out[var] = _text(value)
        return out

    @property
    def webhook_url_env(self) -> str | None:
        """Name of the variable holding the alert webhook URL (never its value)."""
        value = self.alert_webhook_url
        if value is None:
            return None
        if not isinstance(value, dg.EnvVar):
            raise ConfigError(
                "MlchaosResource.alert_webhook_url: a secret, pass dg.EnvVar('VARIABLE_NAME')"
            )
        return value.env_var_name

    def apply(self) -> dict[str, str]:
        """Export :meth:`settings_env` into this process's environment (inherited by step
        processes), except variables already set; return what was set."""
        env = self.settings_env()
        self.webhook_url_env  # noqa: B018 - refuse a plain-text webhook URL before anything runs
        applied = {k: v for k, v in env.items() if not os.environ.get(k)}
        os.environ.update(applied)
        return applied

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Runs with a run's resource config (possibly overridden at launch): apply it."""
        self.apply()


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def find_resource(
    resources: Mapping[str, object] | None,
) -> tuple[str, MlchaosResource] | None:
    """The first MlchaosResource among ``resources`` (key, resource), or None."""
    for key, value in (resources or {}).items():
        if isinstance(value, MlchaosResource):
            return key, value
    return None
