"""One-shot set-up of the staging stack, run by the ``airflow-init`` service after
``airflow db migrate``: create the raw-events bucket, seed the example pipeline's raw partitions
(if ``MLCHAOS_SEED_EXAMPLE_DATA`` is 1) and write the Airflow admin password file.

Idempotent: an existing bucket is kept, seeded partitions are rewritten with the same bytes, the
password file is rewritten. Environment: ``MLCHAOS_S3_ENDPOINT_URL``, ``MLCHAOS_RAW_BUCKET``,
``MLCHAOS_RAW_ROOT``, ``AIRFLOW_ADMIN_PASSWORD``,
``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ADMIN_USER = "admin"


def s3_client(endpoint_url: str, region: str = "us-east-1") -> Any:
    """A boto3 S3 client on ``endpoint_url`` (credentials from the usual AWS_* variables)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region)


def ensure_bucket(client: Any, bucket: str, *, attempts: int = 30, delay_s: float = 1.0) -> bool:
    """Create ``bucket`` unless it exists; retry while the store is starting.

    Returns True if it was created, False if it already existed."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    for attempt in range(1, attempts + 1):
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
            client.create_bucket(Bucket=bucket)
            return True
        except EndpointConnectionError:
            if attempt == attempts:
                raise
            time.sleep(delay_s)
    raise AssertionError("unreachable")


def seed_example_data(client: Any, raw_root: str) -> list[str]:
    """Write the example pipeline's seeded raw-event partitions under ``raw_root``."""
    from mlchaos_orchestration.examples.locations import ExampleConfig, prepare

    config = dataclasses.replace(ExampleConfig.from_env(), raw_root=raw_root)
    return prepare(config, client=client)


def write_password_file(path: Path, passwords: dict[str, str]) -> None:
    """Write the simple auth manager's ``{user: password}`` JSON file, readable by owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(passwords) + "\n")
    os.replace(tmp, path)


def main(env: dict[str, str] | None = None) -> int:
    """Prepare the stack from ``env`` (default ``os.environ``); 0 on success."""
    env = dict(os.environ if env is None else env)
    missing = [
        key
        for key in (
            "MLCHAOS_S3_ENDPOINT_URL",
            "MLCHAOS_RAW_BUCKET",
            "MLCHAOS_RAW_ROOT",
            "AIRFLOW_ADMIN_PASSWORD",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
        )
        if not env.get(key)
    ]
    if missing:
        print(
            f"prepare_stack: missing environment variables: {', '.join(missing)}", file=sys.stderr
        )
        return 2
    bucket = env["MLCHAOS_RAW_BUCKET"]
    client = s3_client(env["MLCHAOS_S3_ENDPOINT_URL"], env.get("AWS_DEFAULT_REGION", "us-east-1"))
    created = ensure_bucket(client, bucket)
    print(f"prepare_stack: bucket {bucket} {'created' if created else 'already exists'}")
    if env.get("MLCHAOS_SEED_EXAMPLE_DATA", "").strip().lower() in ("1", "true", "yes"):
        written = seed_example_data(client, env["MLCHAOS_RAW_ROOT"])
        print(f"prepare_stack: {len(written)} example partitions under {env['MLCHAOS_RAW_ROOT']}")
    password_file = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    write_password_file(password_file, {ADMIN_USER: env["AIRFLOW_ADMIN_PASSWORD"]})
    print(f"prepare_stack: password of Airflow user {ADMIN_USER!r} written to {password_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
