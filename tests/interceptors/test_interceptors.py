"""In-process hooks against real servers: PostgreSQL (psycopg2), SQLite and a moto S3 server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from mlchaos_orchestration import interceptors
from mlchaos_orchestration.errors import SpecError


@pytest.fixture(autouse=True)
def _no_leftover_hooks() -> Iterator[None]:
    yield
    interceptors.remove_all()


# ------------------------------------------------------------------------------------ SQL helpers
def _sql_spec(url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "sql_failure", "url": url, "rate": 0.5, "seed": 7, **extra}


def _failures(engine: Any, n: int, statement: str = "select 1") -> int:
    """Run ``statement`` n times on one connection; count OperationalErrors (checking .orig)."""
    import sqlite3

    import psycopg2
    from sqlalchemy import exc, text

    failed = 0
    with engine.connect() as conn:
        for _ in range(n):
            try:
                conn.execute(text(statement))
            except exc.OperationalError as err:
                assert isinstance(err.orig, (psycopg2.OperationalError, sqlite3.OperationalError))
                assert "mlchaos" in str(err.orig)
                failed += 1
    return failed


# ----------------------------------------------------------------------------------- PostgreSQL
def test_half_the_statements_fail_with_the_drivers_error_and_same_seed_repeats(pg_url):
    import psycopg2
    from sqlalchemy import create_engine, exc, text

    engine = create_engine(pg_url)  # created, and a connection pooled, before install
    with engine.connect() as conn:
        conn.execute(text("select 1"))
    handle = interceptors.install(_sql_spec(pg_url, on=["execute"]))
    first = _failures(engine, 1000)
    assert 450 <= first <= 550
    assert handle.stats == {"calls": 1000, "failures": first}
    with engine.connect() as conn, pytest.raises(exc.OperationalError) as caught:
        for _ in range(100):
            conn.execute(text("select 1"))
    assert type(caught.value.orig) is psycopg2.OperationalError
    handle.remove()
    assert _failures(engine, 200) == 0

    interceptors.install(_sql_spec(pg_url, on=["execute"]))
    assert _failures(create_engine(pg_url), 1000) == first


def test_rate_zero_never_fails_but_counts(pg_url):
    from sqlalchemy import create_engine

    handle = interceptors.install(_sql_spec(pg_url, rate=0))
    assert _failures(create_engine(pg_url), 300) == 0
    assert handle.stats == {"calls": 301, "failures": 0}  # one new connection + 300 statements


def test_counters_are_exact_under_concurrent_threads(pg_url):
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine

    engine = create_engine(pg_url, pool_size=8)
    handle = interceptors.install(_sql_spec(pg_url, on=["execute"]))
    with ThreadPoolExecutor(8) as pool:
        failed = sum(pool.map(lambda _: _failures(engine, 100), range(8)))
    assert handle.stats == {"calls": 800, "failures": failed}
    assert 320 <= failed <= 480


def test_only_the_target_database_is_affected(pg_url, pg_server):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    other_url = pg_server.create_database()
    # the spec carries a redacted password and another driver spelling; both are ignored
    target = make_url(pg_url).set(drivername="postgresql", password="secret")
    handle = interceptors.install(
        _sql_spec(target.render_as_string(hide_password=True), rate=1, on=["execute"])
    )
    assert _failures(create_engine(other_url), 50) == 0
    assert handle.stats["calls"] == 0
    assert _failures(create_engine(pg_url), 50) == 50
    internal = create_engine(pg_url).execution_options(mlchaos_internal=True)  # like the ledger
    assert _failures(internal, 50) == 0


def test_connect_failures_reach_engine_connect(pg_url):
    import psycopg2
    from sqlalchemy import create_engine, exc, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(pg_url, poolclass=NullPool)
    with engine.connect() as live:
        handle = interceptors.install(_sql_spec(pg_url, rate=1, on=["connect"]))
        assert live.execute(text("select 1")).scalar() == 1  # "execute" is not hooked
        with pytest.raises(exc.OperationalError) as caught:
            engine.connect()
    assert type(caught.value.orig) is psycopg2.OperationalError
    assert handle.stats == {"calls": 1, "failures": 1}
    handle.remove()

    interceptors.install(_sql_spec(pg_url, rate=0.5, on=["connect"]))
    outcomes = []
    for _ in range(40):
        try:
            engine.connect().close()
            outcomes.append(True)
        except exc.OperationalError:
            outcomes.append(False)
    assert 8 <= outcomes.count(False) <= 32


def test_latency_is_added_to_every_statement(pg_url):
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)

    def per_statement(n: int = 5) -> float:
        with engine.connect() as conn:
            start = time.perf_counter()
            for _ in range(n):
                conn.execute(text("select 1"))
            return (time.perf_counter() - start) / n

    baseline = per_statement()
    with interceptors.installed([_sql_spec(pg_url, rate=0, latency_ms=50, jitter_ms=10)]):
        slowed = per_statement()
    assert slowed >= 0.050
    assert slowed - baseline >= 0.045
    assert per_statement() < 0.045


def test_sql_error_fails_every_statement_on_the_table(pg_url):
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("create table features (x int)"))
        conn.execute(text("create table features_v2 (x int)"))
    interceptors.install({"kind": "sql_error", "url": pg_url, "table": "features"})
    assert _failures(engine, 5, "select * from features") == 5
    assert _failures(engine, 5, 'select count(*) from public."features"') == 5
    assert _failures(engine, 5, "select * from features_v2") == 0


# --------------------------------------------------------------------------------------- SQLite
def test_sqlite_engines_are_hooked_and_scoped(tmp_path):
    from sqlalchemy import create_engine

    target = f"sqlite:///{tmp_path / 'target.db'}"
    other = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    handle = interceptors.install(_sql_spec(target, rate=1, on=["connect"]))
    from sqlalchemy import exc

    with pytest.raises(exc.OperationalError):
        create_engine(target).connect()
    handle.remove()
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path / 'target.db'}")
    interceptors.install(_sql_spec(target, rate=1, on=["execute"]))
    assert _failures(engine, 10) == 10
    assert _failures(other, 10) == 0


# --------------------------------------------------------------------------- registry semantics
def test_install_is_idempotent_and_installed_removes_only_its_own(tmp_path):
    spec = _sql_spec(f"sqlite:///{tmp_path / 'a.db'}")
    outer = interceptors.install(spec)
    assert interceptors.install(dict(spec)) is outer
    other = _sql_spec(f"sqlite:///{tmp_path / 'b.db'}")
    with interceptors.installed([spec, other]) as handles:
        assert handles[0] is outer
        assert len(interceptors.active()) == 2
    assert interceptors.active() == [outer]
    interceptors.remove_all()
    assert not outer.active and interceptors.active() == []
    outer.remove()  # twice is harmless


@pytest.mark.parametrize(
    "spec, problem",
    [
        ({"kind": "nope"}, "unknown"),
        ({"kind": "sql_failure", "url": "sqlite://", "rate": 1.5}, "rate"),
        ({"kind": "sql_failure", "url": "sqlite://", "on": ["read"]}, "on"),
        ({"kind": "sql_failure", "url": "sqlite://", "latency_ms": 70_000}, "latency_ms"),
        ({"kind": "sql_error", "url": "sqlite://"}, "table"),
        ({"kind": "s3_failure", "bucket": "b", "failure": "slow"}, "failure"),
        ({"kind": "s3_error", "bucket": "b", "status": 200}, "status"),
        ({"kind": "s3_failure", "prefix": "x/"}, "bucket"),
    ],
)
def test_bad_specs_are_refused_with_the_field_named(spec, problem):
    with pytest.raises(SpecError, match=problem):
        interceptors.install(spec)
    assert interceptors.active() == []


# -------------------------------------------------------------------------------------- botocore
def _client(endpoint: str, retries: int = 2, **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    cfg = Config(retries={"max_attempts": retries, "mode": "standard"}, **config)
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=cfg)


@pytest.fixture
def objects(s3_client: Any, s3_bucket: str) -> str:
    for key in ("events/a.csv", "other/a.csv"):
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"x,y\n1,2\n")
    return s3_bucket


def _s3_spec(bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "s3_failure",
        "bucket": bucket,
        "prefix": "events/",
        "rate": 1,
        "seed": 7,
        **extra,
    }


def test_throttling_runs_botocores_retries_then_raises_slowdown(objects, s3_endpoint):
    from botocore.exceptions import ClientError

    handle = interceptors.install(_s3_spec(objects))
    client = _client(s3_endpoint, retries=2)
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket=objects, Key="events/a.csv")
    assert caught.value.response["Error"]["Code"] == "SlowDown"
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert handle.stats == {"calls": 3, "failures": 3}
    with pytest.raises(ClientError, match="SlowDown"):
        client.list_objects_v2(Bucket=objects, Prefix="events/")
    assert client.get_object(Bucket=objects, Key="other/a.csv")["Body"].read() == b"x,y\n1,2\n"
    assert client.list_objects_v2(Bucket=objects, Prefix="other/")["KeyCount"] == 1


def test_503_and_timeout(objects, s3_endpoint):
    from botocore.exceptions import ClientError, ReadTimeoutError

    with interceptors.installed([_s3_spec(objects, failure="503")]):
        with pytest.raises(ClientError, match="ServiceUnavailable"):
            _client(s3_endpoint, retries=0).head_object(Bucket=objects, Key="events/a.csv")
    with interceptors.installed([_s3_spec(objects, failure="timeout")]) as (handle,):
        with pytest.raises(ReadTimeoutError):
            _client(s3_endpoint, retries=1).get_object(Bucket=objects, Key="events/a.csv")
        assert handle.stats["calls"] == 2


def test_half_rate_with_retries_mostly_succeeds_and_remove_restores(objects, s3_endpoint):
    import botocore.session
    from botocore.exceptions import ClientError

    original = botocore.session.Session.create_client
    handle = interceptors.install(_s3_spec(objects, rate=0.5, failure="503"))
    assert botocore.session.Session.create_client is not original
    client = _client(s3_endpoint, retries=3)
    ok = 0
    for _ in range(12):
        try:
            client.get_object(Bucket=objects, Key="events/a.csv")["Body"].read()
            ok += 1
        except ClientError:
            pass
    assert ok >= 10
    assert handle.stats["failures"] > 0 and handle.stats["calls"] > 12
    handle.remove()
    assert botocore.session.Session.create_client is original
    for _ in range(5):  # the dispatcher stays on the client but has nothing to inject
        client.get_object(Bucket=objects, Key="events/a.csv")


def test_s3_error_access_denied_is_not_retried(objects, s3_endpoint):
    from botocore.exceptions import ClientError

    spec = {
        "kind": "s3_error",
        "bucket": objects,
        "prefix": "events/",
        "code": "AccessDenied",
        "status": 403,
    }
    handle = interceptors.install(spec)
    with pytest.raises(ClientError) as caught:
        _client(s3_endpoint).get_object(Bucket=objects, Key="events/a.csv")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert handle.stats == {"calls": 1, "failures": 1}


def test_client_made_before_install_needs_attach(objects, s3_client):
    from botocore.exceptions import ClientError

    with interceptors.installed([_s3_spec(objects)]):
        s3_client.get_object(Bucket=objects, Key="events/a.csv")  # not reached by install()
    handle = interceptors.attach(s3_client, _s3_spec(objects, failure="503"))
    with pytest.raises(ClientError, match="ServiceUnavailable"):
        s3_client.get_object(Bucket=objects, Key="events/a.csv")
    handle.remove()
    s3_client.get_object(Bucket=objects, Key="events/a.csv")


def test_virtual_host_style_requests_are_matched(objects, s3_endpoint):
    from botocore.exceptions import ClientError

    endpoint = s3_endpoint.replace("127.0.0.1", "localhost")
    client = None
    with interceptors.installed(
        [
            {
                "kind": "s3_error",
                "bucket": objects,
                "prefix": "events/",
                "code": "InternalError",
                "status": 500,
            }
        ]
    ) as (handle,):
        client = _client(endpoint, retries=0, s3={"addressing_style": "virtual"})
        urls: list[str] = []
        client.meta.events.register("before-send.s3", lambda request, **_: urls.append(request.url))
        with pytest.raises(ClientError, match="InternalError"):
            client.get_object(Bucket=objects, Key="events/a.csv")
    assert urls and urls[0].startswith(f"http://{objects}.localhost")
    assert handle.stats == {"calls": 1, "failures": 1}


@pytest.mark.parametrize(
    "url, key",
    [
        ("http://127.0.0.1:5000/bkt/events/x%20y.csv", "events/x y.csv"),
        ("https://bkt.s3.us-east-1.amazonaws.com/events/a.csv", "events/a.csv"),
        ("http://127.0.0.1:5000/bkt?list-type=2&prefix=events%2F", "events/"),
        ("http://127.0.0.1:5000/other/events/a.csv", None),
        ("https://other.s3.amazonaws.com/a.csv", None),
    ],
)
def test_request_key_parsing(url, key):
    from mlchaos_orchestration.interceptors.s3 import request_key

    assert request_key(url, "bkt") == key
