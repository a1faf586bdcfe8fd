"""The only things the distributed components share: one PostgreSQL cluster (Airflow metadata
and Celery results, Dagster instance, ledger, feature tables), Redis (the Celery broker) and the
moto S3 server (raw example data)."""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlchaos_orchestration.examples.locations import ExampleConfig, prepare
from mlchaos_orchestration.gameday.stack import RedisServer
from mlchaos_orchestration.testing.servers import MotoS3Server, PostgresServer

FAMILIES = ("airflow", "dagster")
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def example_ds() -> str:
    """Yesterday (UTC): the day a schedule ticking now tests, so every run uses the same data."""
    return (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()


@dataclass
class Backends:
    """PostgreSQL + moto S3 + Redis on loopback; :meth:`env` is what every process is told."""

    root: Path
    pg: PostgresServer = field(default_factory=PostgresServer)
    s3: MotoS3Server = field(default_factory=MotoS3Server)
    redis: RedisServer = field(init=False)
    _stack: ExitStack = field(default_factory=ExitStack)

    def __enter__(self) -> Backends:
        self._stack.enter_context(self.pg)
        self._stack.enter_context(self.s3)
        self.redis = RedisServer(self.root / "redis").start()
        self._stack.callback(self.redis.stop)
        # one ledger per deployment: the ledger compares targets by their ${VAR} reference,
        # which each deployment resolves to its own database
        self.ledgers = {f: self.pg.create_database(f"ledger_{f}") for f in FAMILIES}
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def env(self, family: str) -> dict[str, str]:
        """What every process of ``family`` (airflow | dagster) is told."""
        return {
            **S3_ENV,
            "MLCHAOS_S3_ENDPOINT_URL": self.s3.endpoint_url,
            "MLCHAOS_LEDGER_URL": self.ledgers[family],
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def s3_client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.s3.endpoint_url, **_boto_kwargs())

    def example(self, name: str, ds: str, *, s3: bool) -> ExampleConfig:
        """Example data of one run family: raw partitions on S3 (bucket ``name``) or under
        ``root/name``, features in database ``features_<name>``; written now."""
        client = None
        if s3:
            client = self.s3_client()
            client.create_bucket(Bucket=name)
            raw = f"s3://{name}/raw/events"
        else:
            raw = str(self.root / name / "raw" / "events")
        cfg = ExampleConfig(
            raw_root=raw,
            features_url=self.pg.create_database(f"features_{name.replace('-', '_')}"),
            model_dir=str(self.root / name / "models"),
            ds=ds,
        )
        prepare(cfg, client=client)
        return cfg


def _boto_kwargs() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_ENV["AWS_DEFAULT_REGION"],
    }
