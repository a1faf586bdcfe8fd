"""Safety guards: allowlisted targets only, no production unless opted in, no path escapes."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import NoReturn

from pydantic import BaseModel, ConfigDict, Field

from mlchaos_orchestration.core.targets import Target, database_identity
from mlchaos_orchestration.errors import SafetyError, one_line
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
    only_listed_targets: bool = Field(
        False,
        description="allowed_targets replace the deployment allowlist instead of adding to it "
        "(set by bound_runtime_safety on run-time input)",
    )


def effective_allowlist(settings: Settings, spec: SafetySpec) -> list[str]:
    """Allowlist entries from the environment plus the experiment's own; only the experiment's
    when ``spec.only_listed_targets`` (a run-time spec already bounded by the deployment)."""
    if spec.only_listed_targets:
        return list(spec.allowed_targets)
    return [*settings.allowed_targets, *spec.allowed_targets]


def bound_runtime_safety(
    requested: SafetySpec,
    *,
    deployment: Sequence[SafetySpec] = (),
    settings: Settings | None = None,
    where: str = "run conf",
) -> SafetySpec:
    """The safety of an experiment that came from run-time input (run conf, trigger form,
    Dagster tags / run config), bounded by the deployment.

    Ceilings: allowlist = ``settings.allowed_targets`` plus every deployment spec's entries (a
    deployment spec with ``only_listed_targets`` contributes its own entries only); TTL = the
    largest deployment ``ttl_s`` (``settings.default_ttl_s`` without deployment specs);
    production only if the settings and (when given) a deployment spec allow it; the environment
    is the deployment's. Raises a one-line :class:`SafetyError` naming ``where`` and the entry when
    the request widens anything. Otherwise returns a spec with ``only_listed_targets=True`` whose
    allowed_targets are the requested entries (each inside the ceiling) or the ceiling itself;
    fields the request did not set come from the deployment (``allow_production`` never does:
    production needs the run-time request's own opt-in as well).
    """
    from mlchaos_orchestration.settings import get_settings

    settings = settings or get_settings()
    deployment = list(deployment)
    asked = requested.model_fields_set

    ceiling = _ceiling_allowlist(settings, deployment)
    allowed: list[str] = []
    for entry in requested.allowed_targets:
        inside = _entry_inside(entry, ceiling)
        if inside is None:
            raise _refusal(where, "allowed_targets", entry, "is outside the deployment allowlist")
        if inside not in allowed:
            allowed.append(inside)
    if not requested.allowed_targets:
        allowed = list(ceiling)

    ttl_ceiling = max((d.ttl_s for d in deployment), default=settings.default_ttl_s)
    ttl = requested.ttl_s if "ttl_s" in asked else ttl_ceiling
    if ttl > ttl_ceiling:
        raise _refusal(
            where, "ttl_s", _num(ttl), f"is above the deployment ceiling of {_num(ttl_ceiling)} s"
        )

    production_ok = settings.allow_production and (
        not deployment or any(d.allow_production for d in deployment)
    )
    if requested.allow_production and not production_ok:
        raise _refusal(where, "allow_production", "true", "is not allowed by the deployment")

    deployed_env = next((d.environment for d in deployment if d.environment), None)
    env_name = deployed_env or settings.environment
    if requested.environment is not None and _norm(requested.environment) != _norm(env_name):
        raise _refusal(
            where,
            "environment",
            requested.environment,
            f"is not the deployment environment '{one_line(env_name, 100)}'",
        )

    deadline = requested.alert_deadline_s
    if "alert_deadline_s" not in asked and deployment:
        deadline = deployment[0].alert_deadline_s
    return SafetySpec(
        ttl_s=ttl,
        allowed_targets=allowed,
        environment=deployed_env,
        allow_production=requested.allow_production,
        alert_deadline_s=deadline,
        only_listed_targets=True,
    )


def _ceiling_allowlist(settings: Settings, deployment: Sequence[SafetySpec]) -> list[str]:
    entries: list[str] = []
    if not deployment or not all(d.only_listed_targets for d in deployment):
        entries.extend(settings.allowed_targets)
    for spec in deployment:
        entries.extend(spec.allowed_targets)
    out: list[str] = []
    for entry in entries:
        entry = entry.strip()
        if entry and entry not in out:
            out.append(entry)
    return out


def _entry_inside(entry: str, ceiling: Sequence[str]) -> str | None:
    """``entry`` as it will be used (local paths made absolute) if every target it allows is
    allowed by some ceiling entry, else ``None``."""
    if not isinstance(entry, str):
        return None
    text = entry.strip()
    if not text or "\x00" in text or any(not ch.isprintable() for ch in text):
        return None
    if text.startswith("s3://"):
        if len(text) <= 5 or ".." in text[5:].split("/") or "//" in text[5:]:
            return None
        probe = text.rstrip("/")
        ok = any(c.startswith("s3://") and _prefix_match(probe, c) for c in ceiling)
        return text if ok else None
    if text.startswith(XCOM):
        return text if any(_xcom_allows(c, text) for c in ceiling) else None
    if "://" in text:
        if "#" not in text:
            return None
        url, table = text.rsplit("#", 1)
        if not table:
            return None
        identity = database_identity(url)
        for c in ceiling:
            if "#" not in c or "://" not in c or c.startswith("s3://"):
                continue
            c_url, c_table = c.rsplit("#", 1)
            if database_identity(c_url) == identity and c_table in ("*", table):
                return text
        return None
    if ".." in text.replace("\\", "/").split("/"):
        return None
    path = os.path.abspath(os.path.expanduser(text))
    for c in ceiling:
        if "://" in c:
            continue
        root = os.path.realpath(os.path.expanduser(c))
        try:
            if os.path.commonpath([os.path.realpath(path), root]) == root:
                return path
        except ValueError:
            continue
    return None


def _refusal(where: str, field: str, value: str, why: str) -> SafetyError:
    shown = one_line(value, 200)
    return SafetyError(one_line(f"{where}: safety.{field} '{shown}' {why}: refused", 1000))


def _num(value: float) -> str:
    return f"{value:g}"


def _norm(name: str) -> str:
    return name.strip().lower()


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
            _refuse(target.describe(), allowlist)


def _refuse(described: str, allowlist: Sequence[str]) -> NoReturn:
    if not allowlist:
        raise SafetyError(
            f"target {described} refused: no allowed targets are configured "
            "(set safety.allowed_targets or MLCHAOS_ALLOWED_TARGETS)"
        )
    raise SafetyError(f"target {described} is not in the allowlist")


XCOM = "xcom://"


def check_xcom_target(target: str, allowlist: Sequence[str]) -> None:
    """Raise SafetyError unless an allowlist entry allows the XCom ``xcom://<task_id>/<key>``:
    ``xcom://<task_id>`` allows every key of that task, ``xcom://<task_id>/<key>`` one key,
    ``xcom://*`` every XCom (an XCom fault changes what a task pulls, never what is stored)."""
    if not any(_xcom_allows(entry, target) for entry in allowlist):
        _refuse(target, allowlist)


def _xcom_allows(entry: str, target: str) -> bool:
    """Whether allowlist ``entry`` covers the XCom ``target`` (or narrower ``xcom://`` entry)."""
    entry, target = entry.strip(), target.strip()
    if not (entry.startswith(XCOM) and target.startswith(XCOM)):
        return False
    e_task, _, e_key = entry[len(XCOM) :].strip("/").partition("/")
    t_task, _, t_key = target[len(XCOM) :].strip("/").partition("/")
    if not e_task or not t_task:
        return False
    return e_task in ("*", t_task) and (not e_key or e_key == t_key)


def _allowed(target: Target, entry: str) -> bool:
    entry = entry.strip()
    if not entry:
        return False
    if target.kind == "s3":
        if not entry.startswith("s3://") or ".." in target.key.split("/"):
            return False
        return _prefix_match(target.location, entry)
    if target.kind in ("sql", "mlflow"):  # an MLflow registry lives in its tracking database
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
