"""with_chaos on an asset graph this project did not write: Dagster's documented blocking asset
check example (``orders`` + ``orders_id_has_no_nulls``, in the variant whose check loads the
asset value), plus a downstream asset. No asset code is edited."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd
import pytest
from dagster_support import evaluate_alert_sensor

from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.dagster import TAG_EXPERIMENT, run_experiment_dagster, with_chaos

REPORTS: list[int] = []


@dg.asset
def orders() -> pd.DataFrame:
    return pd.DataFrame({"order_id": [1, 2, 3, 4], "item_id": [432, 878, 102, 555]})


@dg.asset_check(asset=orders, blocking=True)
def orders_id_has_no_nulls(orders: pd.DataFrame) -> dg.AssetCheckResult:
    num_null_order_ids = orders["order_id"].isna().sum()
    return dg.AssetCheckResult(passed=bool(num_null_order_ids == 0))


@dg.asset
def orders_report(orders: pd.DataFrame) -> int:
    REPORTS.append(len(orders))
    return len(orders)


@pytest.fixture
def foreign_defs(mlchaos_home: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    REPORTS.clear()
    original = dg.Definitions(assets=[orders, orders_report], asset_checks=[orders_id_has_no_nulls])
    return with_chaos(original, gate="orders_id_has_no_nulls", consumer="orders_report")


def _materialized(instance: Any, run_id: str, key: str) -> bool:
    return any(
        e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key == dg.AssetKey(key)
        for e in (
            r.event_log_entry.dagster_event for r in instance.get_records_for_run(run_id).records
        )
        if e
    )


def test_nulls_on_the_checked_asset_are_caught(
    foreign_defs: Any, instance: Any, webhook: Any
) -> None:
    exp = parse_experiment(
        {
            "name": "orders-nulls",
            "faults": [
                {
                    "fault": "nulls",
                    "columns": ["order_id"],
                    "fraction": 0.5,
                    "at": "orders_id_has_no_nulls",
                }
            ],
        }
    )
    verdict = run_experiment_dagster(foreign_defs, exp, instance=instance)
    assert verdict["verdict"] == "caught", verdict
    assert verdict["halted_by"] == "orders_id_has_no_nulls"
    assert not _materialized(instance, verdict["dagster_run_id"], "orders_report")
    assert _materialized(instance, verdict["dagster_run_id"], "orders")  # checked asset: already
    assert webhook.wait_for(1, timeout=10)
    assert REPORTS == []


def test_in_memory_outage_on_a_load_halts_the_consumer(
    foreign_defs: Any, instance: Any, webhook: Any, tmp_path: Any
) -> None:
    exp = parse_experiment(
        {
            "name": "orders-outage",
            "faults": [
                {
                    "fault": "upstream_outage",
                    "target": str(tmp_path),
                    "mode": "missing",
                    "at": "orders_report",
                }
            ],
        }
    )
    verdict = run_experiment_dagster(foreign_defs, exp, instance=instance)
    assert verdict["verdict"] == "caught", verdict
    events = Ledger().events(verdict["run_id"])
    failed = next(e for e in events if e.kind == "task_failed")
    assert failed.source == "orders_report" and "upstream_outage" in failed.data["message"]
    assert REPORTS == []


def test_truncated_load_is_silent_without_a_row_count_check(
    foreign_defs: Any, instance: Any, webhook: Any, tmp_path: Any
) -> None:
    exp = parse_experiment(
        {
            "name": "orders-truncated",
            "faults": [
                {
                    "fault": "upstream_outage",
                    "target": str(tmp_path),
                    "mode": "truncated",
                    "keep_fraction": 0.5,
                    "at": "orders_report",
                }
            ],
        }
    )
    verdict = run_experiment_dagster(foreign_defs, exp, instance=instance)
    assert verdict["verdict"] == "silent", verdict
    assert REPORTS == [2]  # the consumer ran on half the rows
    assert webhook.requests == []


def test_dormant_without_chaos_tags(foreign_defs: Any, instance: Any, webhook: Any) -> None:
    result = foreign_defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance
    )
    assert result.success
    assert REPORTS == [4]
    assert Ledger().list_runs() == []


def test_tag_names_an_experiment_of_the_file(
    mlchaos_home: Any, webhook: Any, instance: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run launched with only the tag (e.g. from the UI) begins its ledger run itself."""
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    path = tmp_path / "exps.yaml"
    path.write_text(
        "experiments:\n  - name: orders-nulls\n    faults:\n"
        "      - {fault: nulls, columns: [order_id], fraction: 0.5,"
        " at: orders_id_has_no_nulls}\n"
    )
    REPORTS.clear()
    defs = with_chaos(
        dg.Definitions(assets=[orders, orders_report], asset_checks=[orders_id_has_no_nulls]),
        experiments_file=str(path),
        gate="orders_id_has_no_nulls",
        consumer="orders_report",
    )
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, tags={TAG_EXPERIMENT: "orders-nulls"}, raise_on_error=False
    )
    assert not result.success
    (run,) = Ledger().list_runs()
    assert run["orchestrator"] == "dagster" and run["experiment"] == "orders-nulls"
    assert run["status"] == "running" and REPORTS == []
    # what the daemon does: evaluate the (running-by-default) failure sensor for this run
    assert (
        defs.resolve_sensor_def("mlchaos_alert_on_failure").default_status
        == dg.DefaultSensorStatus.RUNNING
    )
    evaluate_alert_sensor(defs, result, instance)
    assert webhook.wait_for(1, timeout=10)
    assert webhook.url not in webhook.requests[0].body.decode()  # the URL is a secret
    finished = Ledger().get_run(run["id"])
    assert finished["status"] == "finished" and finished["verdict"] == "caught"
