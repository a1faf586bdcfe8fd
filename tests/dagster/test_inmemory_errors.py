"""In-memory outages raise what the real client raises for the target (issue 9, item 8)."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError

from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.dagster import run_experiment_dagster, with_chaos
from mlchaos_orchestration.dagster.inmemory import outage_error


def _entry(target: Any, mode: str, **extra: Any) -> Any:
    exp = parse_experiment(
        {
            "name": "outage",
            "faults": [
                {"fault": "upstream_outage", "target": target, "mode": mode, "at": "x", **extra}
            ],
        }
    )
    return exp.faults[0]


@pytest.mark.parametrize("mode", ["missing", "late"])
def test_local_file_unavailable_is_what_open_raises(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "orders.csv"
    error = outage_error(_entry(str(path), mode), "orders")
    assert isinstance(error, FileNotFoundError) and error.errno == errno.ENOENT
    assert error.filename == str(path)
    with pytest.raises(FileNotFoundError) as real:
        open(path)  # noqa: SIM115 - what the user's code would have seen
    assert real.value.errno == error.errno


def test_local_file_error_is_an_io_error_not_a_missing_file(tmp_path: Path) -> None:
    error = outage_error(_entry(str(tmp_path / "orders.csv"), "error"), "orders")
    assert isinstance(error, OSError) and not isinstance(error, FileNotFoundError)
    assert error.errno == errno.EIO


def test_s3_objects_raise_botocore_client_errors() -> None:
    missing = outage_error(_entry("s3://bucket/raw/ds={ds}", "missing"), "raw", "2026-11-20")
    assert isinstance(missing, ClientError)
    assert missing.response["Error"]["Code"] == "NoSuchKey"
    assert missing.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    slow = outage_error(_entry("s3://bucket/raw", "error", error_code="SlowDown"), "raw")
    assert isinstance(slow, ClientError) and slow.response["Error"]["Code"] == "SlowDown"
    assert slow.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_sql_tables_raise_sqlalchemy_operational_error(tmp_path: Path) -> None:
    target = {"url": f"sqlite:///{tmp_path / 'f.db'}", "table": "features"}
    error = outage_error(_entry(target, "missing"), "features")
    assert isinstance(error, sa.exc.OperationalError)
    assert isinstance(error.orig, sqlite3.OperationalError)
    assert "no such table: features" in str(error)


def test_in_memory_s3_outage_fails_the_consumer_with_a_client_error(
    mlchaos_home: Path, instance: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)

    @dg.asset
    def events() -> pd.DataFrame:
        return pd.DataFrame({"x": range(5)})

    @dg.asset
    def model(events: pd.DataFrame) -> int:
        return len(events)

    defs = with_chaos(dg.Definitions(assets=[events, model]), consumer="model")
    exp = parse_experiment(
        {
            "name": "s3-down",
            "faults": [
                {
                    "fault": "upstream_outage",
                    "target": "s3://lake/events",
                    "mode": "error",
                    "error_code": "ServiceUnavailable",
                    "at": "model",
                }
            ],
        }
    )
    verdict = run_experiment_dagster(defs, exp, instance=instance)
    assert verdict["verdict"] == "caught", verdict
    events_ = Ledger().events(verdict["run_id"])
    failed = next(e for e in events_ if e.kind == "task_failed")
    assert failed.source == "model" and "ServiceUnavailable" in failed.data["message"]
    applied = next(e for e in events_ if e.kind == "fault_applied")
    assert applied.data["details"]["raised"] == "ClientError"
    assert applied.data["site"] == {"step": "model", "input": "events"}
