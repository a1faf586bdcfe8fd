"""Which S3 clients an S3 connector fault reaches, recorded as evidence: a pipeline reading
through boto3 from the real moto server is reached (calls intercepted and failed, the clients
named); a fault whose prefix nobody reads through a reached client says so, and names the
clients out of its reach (aiobotocore / s3fs behind pandas' ``s3://`` paths)."""

from __future__ import annotations

from typing import Any

import pytest

from mlchaos_orchestration import interceptors
from mlchaos_orchestration.core.experiment import load_experiments
from mlchaos_orchestration.core.pipeline import Pipeline, Step
from mlchaos_orchestration.core.runner import run_experiment
from mlchaos_orchestration.interceptors.registry import CLIENTS
from mlchaos_orchestration.reporting.report import build_journal


def _pipeline(bucket: str, endpoint: str) -> Pipeline:
    def load() -> Any:
        import io

        import boto3
        import pandas as pd

        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        body = client.get_object(Bucket=bucket, Key="events/day.csv")["Body"].read()
        return pd.read_csv(io.BytesIO(body))

    def check(load: Any) -> Any:
        assert load["amount"].notna().all()
        return load

    def train(check: Any) -> int:
        return len(check)

    steps = [Step("load", load), Step("check", check, ("load",)), Step("train", train, ("check",))]
    return Pipeline("s3_reader", steps, gate="check", consumer="train")


@pytest.fixture(autouse=True)
def _no_leftover_hooks() -> Any:
    yield
    interceptors.remove_all()


def test_evidence_names_the_clients_each_s3_fault_reaches(
    s3_client: Any, s3_bucket: str, s3_endpoint: str, mlchaos_home: Any, monkeypatch: Any
) -> None:
    from mlchaos_orchestration.core.ledger import Ledger

    s3_client.put_object(Bucket=s3_bucket, Key="events/day.csv", Body=b"id,amount\n1,2.5\n")
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", f"s3://{s3_bucket}/")
    spec = load_experiments(
        {
            "version": 1,
            "defaults": {"alert": {"expected": False}},
            "experiments": [
                {
                    "name": "throttled",
                    "faults": [
                        {"fault": "connector_failure", "s3": f"s3://{s3_bucket}/events/", "rate": 1}
                    ],
                },
                {
                    "name": "unread-prefix",
                    "faults": [
                        {"fault": "connector_failure", "s3": f"s3://{s3_bucket}/models/", "rate": 1}
                    ],
                },
            ],
        }
    )
    pipeline = _pipeline(s3_bucket, s3_endpoint)
    for exp in spec.experiments:
        run_experiment(pipeline, exp, ds="2026-11-20", suite_id="clients")
    journal = build_journal(Ledger(), "clients")
    runs = {r["experiment"]: r for r in journal["runs"]}
    reached, missed = CLIENTS["s3_failure"]
    assert "s3fs" in missed and "pandas.read_csv" in missed and "boto3.client" in reached

    throttled = runs["throttled"]
    (fault,) = throttled["evidence"]["faults"]
    assert fault["reached"] is True and fault["calls"]["failed"] >= 1
    assert fault["clients"] == {"reached": reached, "not_reached": missed}
    assert f"clients reached: {reached}; not reached: {missed}" in throttled["evidence_text"]

    unread = runs["unread-prefix"]
    assert unread["verdict"] == "not_reached", unread["reason"]
    (fault,) = unread["evidence"]["faults"]
    assert fault["reached"] is False and fault["calls"]["intercepted"] == 0
    assert f"through a client it reaches ({reached}); out of its reach: {missed}" in fault["why"]
