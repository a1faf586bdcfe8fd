"""The test infrastructure itself: real servers, per-test isolation, cleanup after a kill."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlchaos_orchestration.settings import get_settings
from mlchaos_orchestration.testing import ServerStartError, find_postgres_bin
from mlchaos_orchestration.testing.reaper import pid_alive


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_until(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_postgres_answers_version(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("select version()")).scalar_one()
            database = conn.execute(sa.text("select current_database()")).scalar_one()
    finally:
        engine.dispose()
    assert version.startswith("PostgreSQL ")
    assert pg_url.startswith("postgresql+psycopg2://postgres@127.0.0.1:")
    assert pg_url.endswith(f"/{database}")


def test_per_test_databases_are_isolated(pg_server, pg_url: str) -> None:
    other_url = pg_server.create_database()
    assert other_url != pg_url
    first, second = sa.create_engine(pg_url), sa.create_engine(other_url)
    try:
        assert sa.inspect(first).get_table_names() == []  # fresh database per test
        with first.begin() as conn:
            conn.execute(sa.text("create table leak (x int)"))
            conn.execute(sa.text("insert into leak values (1)"))
        assert sa.inspect(first).has_table("leak")
        assert not sa.inspect(second).has_table("leak")
    finally:
        first.dispose()
        second.dispose()


def test_missing_postgres_binaries_give_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match="run scripts/bootstrap.sh"):
        find_postgres_bin(tmp_path)


def test_newest_postgres_version_is_chosen(tmp_path: Path) -> None:
    for version in ("9.6", "15", "13"):
        bin_dir = tmp_path / version / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "initdb").touch()
        (bin_dir / "pg_ctl").touch()
    assert find_postgres_bin(tmp_path) == tmp_path / "15" / "bin"


def test_moto_is_a_separate_process_over_http(s3_server, s3_client, s3_bucket: str) -> None:
    assert s3_server.pid != os.getpid()
    assert s3_server.process.poll() is None
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    s3_client.put_object(Bucket=s3_bucket, Key="a/b.csv", Body=b"x,y\n1,2\n")
    got = s3_client.get_object(Bucket=s3_bucket, Key="a/b.csv")["Body"].read()
    assert got == b"x,y\n1,2\n"
    # The same bytes over plain HTTP (no boto3): the data lives in the server process.
    url = s3_client.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket, "Key": "a/b.csv"}
    )
    assert url.startswith(s3_server.endpoint_url)
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.read() == b"x,y\n1,2\n"


def test_each_test_gets_a_fresh_bucket(s3_client, s3_bucket: str) -> None:
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    assert os.environ["MLCHAOS_S3_ENDPOINT_URL"] == s3_client.meta.endpoint_url
    assert get_settings().s3_endpoint_url == s3_client.meta.endpoint_url


def test_mlchaos_home_sets_env(mlchaos_home: Path) -> None:
    settings = get_settings()
    assert settings.data_dir == mlchaos_home.resolve()
    assert settings.ledger_url == f"sqlite:///{mlchaos_home / 'ledger.db'}"
    assert settings.allowed_targets == ()


def test_webhook_records_post(webhook) -> None:
    before = time.time()
    req = urllib.request.Request(
        webhook.url,
        data=json.dumps({"text": "gate failed"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    (got,) = webhook.wait_for(1, timeout=5)
    assert got.json == {"text": "gate failed"}
    assert got.headers["Content-Type"] == "application/json"
    assert before <= got.received_at <= time.time()


def test_webhook_wait_for_times_out(webhook) -> None:
    with pytest.raises(TimeoutError, match="got 0 request"):
        webhook.wait_for(1, timeout=0.2)


_CHILD = """
import json, sys, time
from mlchaos_orchestration.testing import MotoS3Server, PostgresServer
pg = PostgresServer().start()
moto = MotoS3Server().start()
print(json.dumps({"pg_root": str(pg.root), "pg_port": pg.port,
                  "moto_pid": moto.pid, "moto_port": moto.port,
                  "moto_log_dir": str(moto.log_dir)}), flush=True)
time.sleep(600)
"""


def test_servers_are_cleaned_up_when_owner_is_killed() -> None:
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(child.stdout.readline())
        assert _port_open(info["pg_port"]) and _port_open(info["moto_port"])
        assert Path(info["pg_root"]).is_dir() and Path(info["moto_log_dir"]).is_dir()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert _wait_until(lambda: not _port_open(info["pg_port"]))
    assert _wait_until(lambda: not Path(info["pg_root"]).exists())
    assert _wait_until(lambda: not _port_open(info["moto_port"]))
    assert _wait_until(lambda: not Path(info["moto_log_dir"]).exists())
    assert _wait_until(lambda: not pid_alive(info["moto_pid"]))


# --------------------------------------------------------------------------- SMTP


def test_smtp_server_accepts_records_and_refuses_on_demand() -> None:
    import smtplib

    from mlchaos_orchestration.testing.servers import SmtpServer

    with SmtpServer() as smtp:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            refused = client.sendmail("a@example.org", ["ops@example.org"], "Subject: up\n\nok")
        assert refused == {}
        (mail,) = smtp.wait_for(1)
        assert (mail.subject, mail.rcpt_tos) == ("up", ("ops@example.org",))
        smtp.refuse = "550 5.7.1 relaying denied"
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPDataError) as info:
                client.sendmail("a@example.org", ["ops@example.org"], "Subject: down\n\nx")
        assert info.value.smtp_code == 550
        assert (len(smtp.messages), smtp.refused) == (1, 1)
        port = smtp.port
    assert not _port_open(port)
