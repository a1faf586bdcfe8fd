"""connector_failure on S3 through a wrapped IO manager (moto server over HTTP)."""

import io
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.dagster import run_experiment_dagster, with_chaos


class ParquetS3IOManager(dg.ConfigurableIOManager):
    """A user's IO manager: one parquet object per asset, a fresh client per call."""

    bucket: str
    endpoint_url: str

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        obj.to_parquet(buffer, index=False)
        self._client().put_object(
            Bucket=self.bucket, Key=f"assets/{context.asset_key.path[-1]}", Body=buffer.getvalue()
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        body = (
            self._client()
            .get_object(Bucket=self.bucket, Key=f"assets/{context.asset_key.path[-1]}")["Body"]
            .read()
        )
        return pd.read_parquet(io.BytesIO(body))


@dg.asset
def events() -> pd.DataFrame:
    return pd.DataFrame({"x": range(10)})


@dg.asset
def model(events: pd.DataFrame) -> pd.DataFrame:
    return events.describe()


@pytest.mark.parametrize(("rate", "expected"), [(1.0, "caught"), (0.0, "not_reached")])
def test_s3_connector_failure(
    mlchaos_home: Any,
    s3_bucket: str,
    s3_endpoint: str,
    instance: Any,
    webhook: Any,
    monkeypatch: pytest.MonkeyPatch,
    rate: float,
    expected: str,
) -> None:
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    defs = with_chaos(
        dg.Definitions(
            assets=[events, model],
            resources={
                "io_manager": ParquetS3IOManager(bucket=s3_bucket, endpoint_url=s3_endpoint)
            },
        ),
        consumer="model",
    )
    exp = parse_experiment(
        {
            "name": "s3-flaky",
            "faults": [
                {
                    "fault": "connector_failure",
                    "s3": f"s3://{s3_bucket}/assets",
                    "rate": rate,
                    "failure": "503",
                }
            ],
            "safety": {"allowed_targets": [f"s3://{s3_bucket}"]},
        }
    )
    verdict = run_experiment_dagster(defs, exp, instance=instance)
    assert verdict["verdict"] == expected, verdict
    if expected == "caught":
        failed = next(e for e in Ledger().events(verdict["run_id"]) if e.kind == "task_failed")
        assert failed.source == "events"  # its output could not be written
        assert webhook.wait_for(1, timeout=10)
    else:
        assert webhook.requests == []
