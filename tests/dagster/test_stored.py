"""A data fault on STORED data (``target`` without ``at``): injected before the run through the
core session, read by the asset as it is, restored byte-exactly when the run finishes."""

import hashlib
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.dagster import gx_blocking_check, run_experiment_dagster, with_chaos

SUITE = {
    "name": "payments",
    "expectations": [{"type": "ExpectColumnValuesToNotBeNull", "kwargs": {"column": "amount"}}],
}


def test_stored_csv_fault_is_caught_and_restored(
    mlchaos_home: Path, instance: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    source = mlchaos_home / "landing" / "payments.csv"
    source.parent.mkdir()
    pd.DataFrame({"id": range(200), "amount": [float(i) for i in range(200)]}).to_csv(
        source, index=False
    )
    digest = hashlib.sha256(source.read_bytes()).hexdigest()

    @dg.asset
    def payments() -> pd.DataFrame:
        return pd.read_csv(source)

    @dg.asset
    def scores(payments: pd.DataFrame) -> float:
        return float(payments["amount"].mean())

    gate = gx_blocking_check(
        payments, SUITE, name="payments_gate", load_frame=lambda context: pd.read_csv(source)
    )
    defs = with_chaos(
        dg.Definitions(assets=[payments, scores], asset_checks=[gate]),
        gate="payments_gate",
        consumer="scores",
    )
    exp = parse_experiment(
        {
            "name": "stored-nulls",
            "faults": [
                {"fault": "nulls", "columns": ["amount"], "fraction": 0.25, "target": str(source)}
            ],
            "safety": {"allowed_targets": [str(source.parent)]},
        }
    )
    verdict = run_experiment_dagster(defs, exp, instance=instance)
    assert verdict["verdict"] == "caught", verdict
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    assert webhook.wait_for(1, timeout=10)
