"""The deployment is the ceiling: bound_runtime_safety lets run-time input (run conf, trigger form,
Dagster tags) narrow the allowlist, TTL, production opt-in and environment, never widen them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.core.safety import (
    SafetySpec,
    bound_runtime_safety,
    check_targets,
    effective_allowlist,
)
from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import SafetyError
from mlchaos_orchestration.settings import get_settings


def settings(tmp_path: Path, allowed: list[str] = (), **env: str) -> Any:  # type: ignore[assignment]
    return get_settings(
        {
            "MLCHAOS_HOME": str(tmp_path / "home"),
            "MLCHAOS_ALLOWED_TARGETS": ",".join(allowed),
            **env,
        }
    )


def refused(match: str, requested: SafetySpec, **kwargs: Any) -> str:
    with pytest.raises(SafetyError) as info:
        bound_runtime_safety(requested, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert match in message, message
    assert message.endswith(": refused"), message
    return message


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "data"
    for sub in ("allowed/events", "allowed/other", "allowed2", "outside"):
        (root / sub).mkdir(parents=True)
    (root / "allowed" / "escape").symlink_to(root / "outside")
    return {
        "root": root,
        "allowed": root / "allowed",
        "events": root / "allowed" / "events",
        "other": root / "allowed" / "other",
        "outside": root / "outside",
    }


# ------------------------------------------------------------------------------ allowlist
def test_narrowing_inside_the_ceiling_replaces_the_allowlist(
    tmp_path: Path, tree: dict[str, Path]
) -> None:
    s = settings(tmp_path, [str(tree["allowed"])])
    bounded = bound_runtime_safety(SafetySpec(allowed_targets=[str(tree["events"])]), settings=s)
    assert bounded.only_listed_targets is True
    assert bounded.allowed_targets == [str(tree["events"])]
    assert effective_allowlist(s, bounded) == [str(tree["events"])]
    check_targets([Target.parse(str(tree["events"] / "a.csv"))], effective_allowlist(s, bounded))
    with pytest.raises(SafetyError, match="not in the allowlist"):  # allowed by the deployment
        check_targets([Target.parse(str(tree["other"]))], effective_allowlist(s, bounded))


def test_no_requested_targets_means_the_ceiling_itself(
    tmp_path: Path, tree: dict[str, Path]
) -> None:
    s = settings(tmp_path, [str(tree["events"])])
    deployment = [SafetySpec(allowed_targets=[str(tree["other"])])]
    bounded = bound_runtime_safety(SafetySpec(), deployment=deployment, settings=s)
    assert bounded.allowed_targets == [str(tree["events"]), str(tree["other"])]
    assert bounded.only_listed_targets
    # a deployment spec that itself lists only its targets does not bring the settings' in
    only = [SafetySpec(allowed_targets=[str(tree["other"])], only_listed_targets=True)]
    assert bound_runtime_safety(SafetySpec(), deployment=only, settings=s).allowed_targets == [
        str(tree["other"])
    ]


def test_unset_deployment_allowlist_refuses_any_runtime_grant(
    tmp_path: Path, tree: dict[str, Path]
) -> None:
    """Issue 9 item 5: the deployment allowlist is unset (refuse everything); a run conf that
    grants itself a directory is refused, and an empty request stays 'refuse everything'."""
    s = settings(tmp_path, [])
    message = refused(
        "is outside the deployment allowlist",
        SafetySpec(allowed_targets=[str(tree["outside"])]),
        settings=s,
        where="dag_run.conf",
    )
    assert message == (
        f"dag_run.conf: safety.allowed_targets '{tree['outside']}' is outside the deployment "
        "allowlist: refused"
    )
    bounded = bound_runtime_safety(SafetySpec(), settings=s)
    assert bounded.allowed_targets == [] and effective_allowlist(s, bounded) == []


def test_local_entries_outside_the_ceiling_are_refused(
    tmp_path: Path, tree: dict[str, Path]
) -> None:
    s = settings(tmp_path, [str(tree["allowed"])])
    for entry in (
        str(tree["outside"]),
        str(tree["root"] / "allowed2"),  # shares the prefix, not the directory
        str(tree["allowed"] / "escape"),  # a symlink out of the ceiling
        str(tree["allowed"] / "escape" / "x.csv"),
        f"{tree['allowed']}/../outside",
        f"{tree['allowed']}/events/../../outside",
        str(tree["root"]),  # the parent of the ceiling
        "/",
        "",
        "   ",
        "s3://bucket/",
        "postgresql://h/db#t",
    ):
        refused(
            f"safety.allowed_targets '{entry}'",
            SafetySpec(allowed_targets=[str(tree["events"]), entry]),
            settings=s,
        )


def test_relative_and_home_entries_are_made_absolute(
    tmp_path: Path, tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings(tmp_path, [str(tree["allowed"])])
    monkeypatch.chdir(tree["allowed"])
    bounded = bound_runtime_safety(SafetySpec(allowed_targets=["events"]), settings=s)
    assert bounded.allowed_targets == [str(tree["events"])]
    monkeypatch.setenv("HOME", str(tree["root"]))
    bounded = bound_runtime_safety(SafetySpec(allowed_targets=["~/allowed/other"]), settings=s)
    assert bounded.allowed_targets == [str(tree["other"])]
    refused("'~/outside'", SafetySpec(allowed_targets=["~/outside"]), settings=s)


def test_s3_entries(tmp_path: Path) -> None:
    s = settings(tmp_path, ["s3://lake/data/", "s3://whole"])
    ok = ["s3://lake/data/", "s3://lake/data", "s3://lake/data/events/", "s3://whole/any/x.csv"]
    assert bound_runtime_safety(SafetySpec(allowed_targets=ok), settings=s).allowed_targets == ok
    for entry in (
        "s3://lake",
        "s3://lake/",
        "s3://lake/database/",
        "s3://lake/data-not/",
        "s3://lake/data/../secrets/",
        "s3://lake//data/",
        "s3://other/data/",
        "s3://",
    ):
        refused(f"'{entry}'", SafetySpec(allowed_targets=[entry]), settings=s)


def test_sql_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        tmp_path, ["postgresql://app@db:5432/features#*", "postgresql://app@db:5432/audit#log"]
    )
    ok = [
        "postgresql://app@db:5432/features#orders",
        "postgresql://reader@db:5432/features#orders",  # same database, another user
        "postgresql+psycopg2://x@db:5432/audit#log",
    ]
    assert bound_runtime_safety(SafetySpec(allowed_targets=ok), settings=s).allowed_targets == ok
    for entry in (
        "postgresql://app@db:5432/audit#*",  # the ceiling names one table there
        "postgresql://app@db:5432/audit#users",
        "postgresql://app@db:5432/other#orders",
        "postgresql://app@otherhost:5432/features#orders",
        "postgresql://app@db:5432/features",  # no table
        "postgresql://app@db:5432/features#",
    ):
        refused(f"'{entry}'", SafetySpec(allowed_targets=[entry]), settings=s)


# ---------------------------------------------------------------- ttl / production / environment
def test_ttl_ceiling(tmp_path: Path) -> None:
    s = settings(tmp_path, [], MLCHAOS_DEFAULT_TTL_S="600")
    assert bound_runtime_safety(SafetySpec(), settings=s).ttl_s == 600
    assert bound_runtime_safety(SafetySpec(ttl_s=60), settings=s).ttl_s == 60
    refused(
        "safety.ttl_s '601' is above the deployment ceiling of 600 s",
        SafetySpec(ttl_s=601),
        settings=s,
    )
    deployment = [SafetySpec(ttl_s=120), SafetySpec(ttl_s=300)]
    assert bound_runtime_safety(SafetySpec(), deployment=deployment, settings=s).ttl_s == 300
    refused("ceiling of 300 s", SafetySpec(ttl_s=600), deployment=deployment, settings=s)


def test_production_only_if_the_deployment_allows_it(tmp_path: Path) -> None:
    want = SafetySpec(allow_production=True)
    plain = settings(tmp_path, [], MLCHAOS_ENVIRONMENT="production")
    opted = settings(tmp_path, [], MLCHAOS_ENVIRONMENT="production", MLCHAOS_ALLOW_PRODUCTION="1")
    refused("safety.allow_production 'true' is not allowed", want, settings=plain)
    refused(
        "allow_production", want, settings=plain, deployment=[SafetySpec(allow_production=True)]
    )
    refused("allow_production", want, settings=opted, deployment=[SafetySpec()])
    ok = bound_runtime_safety(want, settings=opted, deployment=[SafetySpec(allow_production=True)])
    assert ok.allow_production is True
    assert bound_runtime_safety(want, settings=opted).allow_production is True
    # the production opt-in is never inherited: the run-time request must say so itself
    inherited = bound_runtime_safety(
        SafetySpec(), settings=opted, deployment=[SafetySpec(allow_production=True)]
    )
    assert inherited.allow_production is False


def test_environment_comes_from_the_deployment(tmp_path: Path) -> None:
    s = settings(tmp_path, [], MLCHAOS_ENVIRONMENT="staging")
    assert bound_runtime_safety(SafetySpec(environment=" Staging "), settings=s).environment is None
    refused(
        "safety.environment 'dev' is not the deployment environment 'staging'",
        SafetySpec(environment="dev"),
        settings=s,
    )
    deployment = [SafetySpec(environment="production")]
    bounded = bound_runtime_safety(SafetySpec(), deployment=deployment, settings=s)
    assert bounded.environment == "production"
    refused("'dev'", SafetySpec(environment="dev"), deployment=deployment, settings=s)
    refused("'staging'", SafetySpec(environment="staging"), deployment=deployment, settings=s)


def test_refusal_is_one_line_whatever_the_input(tmp_path: Path) -> None:
    s = settings(tmp_path, [str(tmp_path)])
    for entry in ("a\nb", "x\r\n: fake", "\u202e/etc", "y" * 5000, "\x00"):
        message = refused(
            "outside the deployment allowlist",
            SafetySpec(allowed_targets=[entry]),
            settings=s,
            where="trigger\nform",
        )
        assert len(message) <= 1000


def test_alert_deadline_and_fields_kept(tmp_path: Path) -> None:
    s = settings(tmp_path, [str(tmp_path)])
    deployment = [SafetySpec(alert_deadline_s=30)]
    assert (
        bound_runtime_safety(SafetySpec(), deployment=deployment, settings=s).alert_deadline_s == 30
    )
    asked = bound_runtime_safety(SafetySpec(alert_deadline_s=90), deployment=deployment, settings=s)
    assert asked.alert_deadline_s == 90
    again = bound_runtime_safety(asked, deployment=deployment, settings=s)  # idempotent
    assert again == asked
    assert os.path.isabs(asked.allowed_targets[0])
