"""Shared fixtures: real PostgreSQL, a moto S3 server subprocess, a webhook sink, MLCHAOS_HOME.

Servers are session-scoped (under pytest-xdist each worker starts its own); the data they hand
to a test (database, bucket, env vars) is fresh per test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.testing import MotoS3Server, PostgresServer, WebhookReceiver

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for this test session (or xdist worker)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """SQLAlchemy URL of a fresh, empty PostgreSQL database for this test."""
    return pg_server.create_database()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3Server]:
    """moto's S3 server running as a subprocess for this session (or xdist worker)."""
    with MotoS3Server() as server:
        yield server


@pytest.fixture(scope="session")
def s3_endpoint(s3_server: MotoS3Server) -> str:
    """http URL of the moto server."""
    return s3_server.endpoint_url


@pytest.fixture
def s3_client(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """boto3 S3 client on the moto server; also sets dummy AWS creds and MLCHAOS_S3_ENDPOINT_URL."""
    import boto3

    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLCHAOS_S3_ENDPOINT_URL", s3_endpoint)
    no_proxy = ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get("NO_PROXY")]))
    monkeypatch.setenv("NO_PROXY", no_proxy)
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    """Name of a fresh, empty bucket on the moto server."""
    name = f"mlchaos-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def mlchaos_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp MLCHAOS_HOME with a SQLite ledger inside; no allowlist, dev environment."""
    home = tmp_path / "mlchaos_home"
    home.mkdir()
    monkeypatch.setenv("MLCHAOS_HOME", str(home))
    monkeypatch.setenv("MLCHAOS_LEDGER_URL", f"sqlite:///{home / 'ledger.db'}")
    for key in ("MLCHAOS_ALLOWED_TARGETS", "MLCHAOS_ENVIRONMENT", "MLCHAOS_ALLOW_PRODUCTION"):
        monkeypatch.delenv(key, raising=False)
    return home


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A real HTTP endpoint recording POSTed JSON (a Slack-style alert sink)."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def example_env(
    mlchaos_home: Path, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Prepare the example's data under MLCHAOS_HOME and export its variables and the alert
    webhook: ``cfg = example_env(days=3, rows_per_day=500, online_store_url=...)``."""
    from mlchaos_orchestration.examples.locations import ExampleConfig, prepare

    def make(*, days: int | None = None, rows_per_day: int | None = None, **fields: Any) -> Any:
        cfg = ExampleConfig(
            raw_root=str(mlchaos_home / "raw"),
            features_url=f"sqlite:///{mlchaos_home / 'features.db'}",
            model_dir=str(mlchaos_home / "models"),
            **fields,
        )
        sizes = {"days": days, "rows_per_day": rows_per_day}
        prepare(cfg, **{k: v for k, v in sizes.items() if v is not None})
        for key, value in cfg.export().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
        return cfg

    return make
