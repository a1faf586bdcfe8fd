"""connector_failure: parameters, targets, the stored hook spec, and the fault acting for real."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from mlchaos_orchestration import interceptors
from mlchaos_orchestration.core.safety import check_targets
from mlchaos_orchestration.errors import SafetyError
from mlchaos_orchestration.faults import ApplyContext, registry
from mlchaos_orchestration.faults.environment.connector import ConnectorFailure

SECRET = "s3cr3t-pw"


@pytest.fixture(autouse=True)
def _no_leftover_hooks() -> Iterator[None]:
    yield
    interceptors.remove_all()


def _fault(params: dict) -> ConnectorFailure:
    return ConnectorFailure.model_validate(params)


def _with_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=SECRET).render_as_string(hide_password=False)


def test_registered_as_an_environment_fault_with_one_line_description():
    cls = registry()["connector_failure"]
    assert cls is ConnectorFailure and cls.family == "environment"
    assert cls.description() and "\n" not in cls.description()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"url": "sqlite:///a.db", "s3": "s3://b/p/"},
        {"url": "not a url"},
        {"s3": "s3://"},
        {"s3": "b/p"},
        {"url": "sqlite:///a.db", "rate": 1.5},
        {"url": "sqlite:///a.db", "latency_ms": 60_001},
        {"url": "sqlite:///a.db", "jitter_ms": -1},
        {"url": "sqlite:///a.db", "on": []},
        {"url": "sqlite:///a.db", "on": ["read"]},
        {"url": "sqlite:///a.db", "failure": "throttle"},
        {"s3": "s3://b/p/", "on": ["connect"]},
        {"s3": "s3://b/p/", "failure": "slow"},
        {"url": "sqlite:///a.db", "colour": "red"},
    ],
)
def test_invalid_parameters_are_refused(params):
    with pytest.raises(ValidationError):
        ConnectorFailure.model_validate(params)


def test_sql_hook_spec_has_the_seed_and_no_password():
    fault = _fault(
        {"rate": 0.25, "latency_ms": 5, "url": f"postgresql://u:{SECRET}@db.example:5432/features"}
    )
    ctx = ApplyContext(seed=11)
    spec = fault.hook(ctx)
    assert spec == {
        "kind": "sql_failure",
        "url": "postgresql://u:***@db.example:5432/features",
        "on": ["connect", "execute"],
        "error": "OperationalError",
        "rate": 0.25,
        "latency_ms": 5.0,
        "jitter_ms": 0.0,
        "seed": 11,
    }
    stored = json.dumps([spec, fault.spec(), [t.lock_key() for t in fault.touched_targets(ctx)]])
    assert SECRET not in stored
    interceptors.validate(spec)
    assert fault.backup_targets(ctx) == []


def test_s3_hook_spec_and_targets():
    fault = _fault({"s3": "s3://raw/events/", "rate": 1, "failure": "timeout"})
    ctx = ApplyContext(seed=3)
    assert fault.hook(ctx) == {
        "kind": "s3_failure",
        "bucket": "raw",
        "prefix": "events/",
        "failure": "timeout",
        "rate": 1.0,
        "latency_ms": 0.0,
        "jitter_ms": 0.0,
        "seed": 3,
    }
    (target,) = fault.touched_targets(ctx)
    assert (target.kind, target.location) == ("s3", "s3://raw/events/")
    check_targets([target], ["s3://raw/"])
    with pytest.raises(SafetyError):
        check_targets([target], ["s3://raw/other/"])


def test_sql_target_is_the_whole_database_for_the_allowlist():
    url = f"postgresql://u:{SECRET}@db.example/features"
    fault = _fault({"url": url})
    targets = fault.touched_targets(ApplyContext(seed=0))
    check_targets(targets, [f"{url}#*"])
    with pytest.raises(SafetyError):
        check_targets(targets, [f"{url}#features"])  # one table is not the whole database
    with pytest.raises(SafetyError):
        check_targets(targets, ["postgresql://u@db.example/other#*"])


def _ledger_dump(ledger) -> str:
    """Every row of every ledger table as text (read through SQL: reading the SQLite file
    directly would drop this process's POSIX locks on it)."""
    import sqlalchemy as sa

    with ledger.engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        return repr([list(conn.execute(sa.text(f"select * from {t}"))) for t in tables])


def test_the_ledger_carries_the_hook_to_another_process(pg_url, mlchaos_home):
    """apply_fault stores the hook spec in the ledger; a separate reader process installs it
    from there and its statements against the real database fail at the seeded rate."""
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.safety import SafetySpec
    from mlchaos_orchestration.core.session import apply_fault, restore_lease

    ledger = Ledger()
    run_id = ledger.start_run("connector")
    fault = _fault({"url": _with_password(pg_url), "rate": 0.5, "on": ["execute"]})
    applied = apply_fault(
        ledger,
        fault,
        ApplyContext(seed=42),
        run_id=run_id,
        safety=SafetySpec(allowed_targets=[f"{_with_password(pg_url)}#*"]),
    )
    dump = _ledger_dump(ledger)
    assert "sql_failure" in dump and SECRET not in dump  # not in spec, hook or targets
    reader = textwrap.dedent(f"""
        import psycopg2, sqlalchemy as sa
        from mlchaos_orchestration import interceptors
        from mlchaos_orchestration.core.ledger import Ledger
        handles = [interceptors.install(spec, key=lease) for lease, spec in Ledger().active_hooks()]
        failed = 0
        with sa.create_engine({pg_url!r}).connect() as conn:
            for _ in range(400):
                try:
                    conn.execute(sa.text("select 1"))
                except sa.exc.OperationalError as err:
                    assert isinstance(err.orig, psycopg2.OperationalError)
                    failed += 1
        print(len(handles), failed)
    """)

    def run() -> tuple[int, int]:
        out = subprocess.run(
            [sys.executable, "-c", reader], capture_output=True, text=True, check=True, timeout=120
        )
        n_hooks, failed = map(int, out.stdout.split())
        return n_hooks, failed

    n_hooks, failed = run()
    assert n_hooks == 1 and 160 <= failed <= 240
    assert run() == (1, failed)  # the seed travels with the spec
    outcome = restore_lease(ledger, applied.lease.id)
    assert outcome.restored, outcome
    assert run() == (0, 0)


def test_s3_fault_throttles_the_prefix_only(s3_client, s3_bucket, s3_endpoint):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    for key in ("events/1.csv", "models/1.bin"):
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"1")
    fault = _fault({"s3": f"s3://{s3_bucket}/events/", "rate": 1})
    handle = interceptors.install(json.loads(json.dumps(fault.hook(ApplyContext(seed=1)))))
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    with pytest.raises(ClientError, match="SlowDown"):
        client.get_object(Bucket=s3_bucket, Key="events/1.csv")
    assert client.get_object(Bucket=s3_bucket, Key="models/1.bin")["Body"].read() == b"1"
    assert handle.stats == {"calls": 2, "failures": 2}
