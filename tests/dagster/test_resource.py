"""MlchaosResource on the resources page and in effect; with_chaos keeps every Definitions
field; the alert sensor's scope (chaos runs only unless ``alert_all_runs``); the verdict as
Dagster run tags (driver-run and tag-launched runs)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_support import evaluate_alert_sensor

from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.dagster import (
    TAG_EXPERIMENT,
    MlchaosResource,
    run_experiment_dagster,
    with_chaos,
)
from mlchaos_orchestration.errors import ConfigError
from mlchaos_orchestration.settings import get_settings

NULLS = (
    "experiments:\n  - name: ids-nulls\n    faults:\n"
    "      - {fault: nulls, columns: [order_id], fraction: 0.5, at: ids_not_null}\n"
)


@dg.asset
def frame_orders() -> Any:
    import pandas as pd

    return pd.DataFrame({"order_id": [1, 2, 3, 4]})


@dg.asset_check(asset=frame_orders, blocking=True, name="ids_not_null")
def frame_ids_not_null(frame_orders: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=bool(frame_orders["order_id"].notna().all()))


@dg.asset(deps=[frame_orders])
def report() -> None:
    return None


@dg.asset
def broken() -> None:
    raise RuntimeError("production failure")


@pytest.fixture
def clean_env() -> Iterator[None]:
    """with_chaos(resource=...) exports MLCHAOS_* into os.environ: restore it afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _graph() -> dg.Definitions:
    return dg.Definitions(assets=[frame_orders, report], asset_checks=[frame_ids_not_null])


def test_resource_is_listed_with_env_vars_and_becomes_the_settings(
    mlchaos_home: Path, tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._core.remote_representation.external_data import RepositorySnap

    ledger = f"sqlite:///{tmp_path / 'other-ledger.db'}"
    monkeypatch.setenv("TEAM_LEDGER_URL", ledger)
    monkeypatch.delenv("MLCHAOS_LEDGER_URL")
    monkeypatch.setenv("MLCHAOS_S3_ENDPOINT_URL", "http://127.0.0.1:9000")  # set: wins
    monkeypatch.setenv("TEAM_HOOK", "http://127.0.0.1:9/never-shown")
    resource = MlchaosResource(
        ledger_url=dg.EnvVar("TEAM_LEDGER_URL"),
        allowed_targets=[str(tmp_path / "data"), "s3://bucket/raw"],
        environment="staging",
        reports_location=str(tmp_path / "reports"),
        alert_webhook_url=dg.EnvVar("TEAM_HOOK"),
        default_ttl_s=120,
        s3_endpoint_url="http://resource-endpoint",
    )
    defs = with_chaos(_graph(), resource=resource)

    assert defs.resources["mlchaos"] is resource
    (snap,) = [
        r
        for r in RepositorySnap.from_def(defs.get_repository_def()).resources
        if r.is_top_level and r.name == "mlchaos"
    ]
    shown = snap.configured_values
    assert shown["ledger_url"].name == "TEAM_LEDGER_URL"  # the page shows the variable only
    assert shown["alert_webhook_url"].name == "TEAM_HOOK"
    assert shown["environment"] == '"staging"'
    assert "allowed_targets" in {f.name for f in snap.config_field_snaps}
    settings = get_settings()
    assert settings.ledger_url == ledger
    assert settings.environment == "staging"
    assert settings.allowed_targets == (str(tmp_path / "data"), "s3://bucket/raw")
    assert settings.reports_location == str(tmp_path / "reports")
    assert settings.default_ttl_s == 120.0
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"  # the environment wins


def test_resource_webhook_and_experiments_file_drive_a_tagged_run(
    mlchaos_home: Path,
    tmp_path: Path,
    webhook: Any,
    instance: Any,
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resource found among the user's resources: its experiments file resolves the tag, its
    EnvVar webhook receives the alert; the verdict lands on the run as tags."""
    path = tmp_path / "exps.yaml"
    path.write_text(NULLS)
    monkeypatch.delenv("MLCHAOS_ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("TEAM_HOOK", webhook.url)
    user = dg.Definitions(
        assets=[frame_orders, report],
        asset_checks=[frame_ids_not_null],
        resources={
            "chaos_config": MlchaosResource(
                experiments_file=str(path), alert_webhook_url=dg.EnvVar("TEAM_HOOK")
            )
        },
    )
    defs = with_chaos(user, gate="ids_not_null", consumer="report")
    assert "mlchaos" not in defs.resources and "chaos_config" in defs.resources
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, tags={TAG_EXPERIMENT: "ids-nulls"}, raise_on_error=False
    )
    assert not result.success
    evaluate_alert_sensor(defs, result, instance)
    assert webhook.wait_for(1, timeout=10)
    (run,) = Ledger().list_runs()
    assert run["verdict"] == "caught"
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["mlchaos/verdict"] == "caught"
    assert tags["mlchaos/run_id"] == run["id"]
    assert "ids_not_null" in tags["mlchaos/reason"]


def test_secret_webhook_must_be_an_env_var_and_env_vars_must_exist(
    mlchaos_home: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="alert_webhook_url: a secret"):
        with_chaos(_graph(), resource=MlchaosResource(alert_webhook_url="https://hooks/x"))
    monkeypatch.delenv("NOT_SET_LEDGER", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_LEDGER is not set"):
        with_chaos(_graph(), resource=MlchaosResource(ledger_url=dg.EnvVar("NOT_SET_LEDGER")))


def test_without_a_resource_nothing_is_added(mlchaos_home: Path) -> None:
    defs = with_chaos(_graph())
    assert not any(isinstance(r, MlchaosResource) for r in defs.resources.values())
    assert get_settings().environment == "dev"


def test_with_chaos_keeps_every_definitions_field(mlchaos_home: Path) -> None:
    """Every field Dagster 1.13 gives Definitions is set; with_chaos keeps each one (same
    object) or extends it without dropping what the user had. A field added by a newer Dagster
    fails the first assertion, so it is reviewed here."""
    from dagster._record import get_record_annotations
    from dagster.components.core.component_tree import ComponentTree

    @dg.job
    def user_job() -> None:
        pass

    @dg.sensor(job=user_job)
    def user_sensor() -> None:
        return None

    @dg.logger
    def user_logger(_: Any) -> Any:
        import logging

        return logging.getLogger("user")

    original = dg.Definitions(
        assets=[frame_orders, report],
        asset_checks=[frame_ids_not_null],
        schedules=[dg.ScheduleDefinition(job=user_job, cron_schedule="@daily")],
        sensors=[user_sensor],
        jobs=[user_job],
        resources={
            "io_manager": dg.FilesystemIOManager(),
            "user_thing": dg.ResourceDefinition.none_resource(),
        },
        executor=dg.in_process_executor,
        loggers={"user": user_logger},
        metadata={"owner": "team-ml"},
        component_tree=ComponentTree.for_test(),
    )
    fields = set(get_record_annotations(dg.Definitions))
    assert fields == {
        "assets",
        "schedules",
        "sensors",
        "jobs",
        "resources",
        "executor",
        "loggers",
        "asset_checks",
        "metadata",
        "component_tree",
    }
    wrapped = with_chaos(original, gate="ids_not_null", consumer="report")
    changed = {"assets", "asset_checks", "resources", "sensors", "metadata", "executor", "jobs"}
    for name in fields - changed:
        assert getattr(wrapped, name) is getattr(original, name), name
    # executors are wrapped (tag-launched runs' run start / end), same name and config schema;
    # a job without its own executor is the user's object
    assert wrapped.executor.name == original.executor.name
    assert wrapped.executor.config_schema is original.executor.config_schema
    assert [j is o for j, o in zip(wrapped.jobs, original.jobs, strict=True)] == [True]
    assert {s.name for s in original.sensors} < {s.name for s in wrapped.sensors}
    assert set(original.resources) < set(wrapped.resources)
    assert wrapped.resources["user_thing"] is original.resources["user_thing"]
    assert dict(original.metadata).items() <= dict(wrapped.metadata).items()
    keys = lambda d: {k for a in d.assets for k in a.keys}  # noqa: E731
    assert keys(wrapped) == keys(original)
    checks = lambda d: {k for c in d.asset_checks for k in c.check_keys}  # noqa: E731
    assert checks(wrapped) == checks(original)
    wrapped.get_repository_def()  # still loads as a code location


def test_alert_sensor_acts_on_chaos_runs_only_unless_asked(
    mlchaos_home: Path, webhook: Any, instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)

    def evaluate(defs: dg.Definitions) -> None:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        evaluate_alert_sensor(defs, result, instance)

    evaluate(with_chaos(dg.Definitions(assets=[broken])))
    assert webhook.requests == []  # a production failure is the user's alerting's business
    evaluate(with_chaos(dg.Definitions(assets=[broken]), alert_all_runs=True))
    assert webhook.wait_for(1, timeout=10)
    body = webhook.requests[0].body.decode()
    assert "of __ASSET_JOB failed" in body and webhook.url not in body
    assert Ledger().list_runs() == []  # nothing recorded for a dormant run


def test_driver_run_gets_the_verdict_as_run_tags(
    mlchaos_home: Path, webhook: Any, instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    defs = with_chaos(_graph(), gate="ids_not_null", consumer="report")
    exp = parse_experiment(
        {
            "name": "ids-nulls",
            "faults": [
                {"fault": "nulls", "columns": ["order_id"], "fraction": 0.5, "at": "ids_not_null"}
            ],
        }
    )
    verdict = run_experiment_dagster(defs, exp, instance=instance)
    assert verdict["verdict"] == "caught", verdict
    tags = instance.get_run_by_id(verdict["dagster_run_id"]).tags
    assert tags["mlchaos/verdict"] == "caught"
    assert tags["mlchaos/reason"] == verdict["reason"]
    assert tags["mlchaos/run_id"] == verdict["run_id"]
    # the runs list filters by it
    found = instance.get_runs(dg.RunsFilter(tags={"mlchaos/verdict": "caught"}))
    assert [r.run_id for r in found] == [verdict["dagster_run_id"]]
