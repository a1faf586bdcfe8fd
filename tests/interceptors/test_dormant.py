"""Dormant cost is zero by construction: engines and clients a hook does not target get no
listener, and removing the last hook leaves every engine / client exactly as it was (SQLAlchemy's
event-free fast path back, botocore's ``create_client`` and the clients' handlers unchanged)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mlchaos_orchestration import interceptors


@pytest.fixture(autouse=True)
def _no_leftover_hooks() -> Iterator[None]:
    yield
    interceptors.remove_all()


def _events_on(engine: Any) -> bool:
    """Would a statement on ``engine`` go through SQLAlchemy's event dispatch at all?"""
    return bool(engine._has_events or engine.dialect._has_events)


def _statement_fails(engine: Any) -> bool:
    from sqlalchemy import exc, text

    with engine.connect() as conn:
        try:
            conn.execute(text("select 1"))
        except exc.OperationalError:
            return True
    return False


def test_sql_hook_arms_only_target_engines_made_before_or_after(tmp_path):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import Engine

    target = f"sqlite:///{tmp_path / 'target.db'}"
    before = create_engine(target)
    other_before = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    init = Engine.__init__
    handle = interceptors.install({"kind": "sql_failure", "url": target, "on": ["execute"]})
    after = create_engine(target)
    other_after = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    options = before.execution_options(isolation_level="SERIALIZABLE")

    assert [_statement_fails(e) for e in (before, after, options)] == [True, True, True]
    assert not _statement_fails(other_before) and not _statement_fails(other_after)
    assert not _events_on(other_before) and not _events_on(other_after)

    handle.remove()
    assert Engine.__init__ is init
    for engine in (before, after, other_before, other_after):
        assert not _events_on(engine)  # the fast path is back: nothing left per statement
        assert not _statement_fails(engine)


def test_removing_one_sql_hook_keeps_the_other_armed(tmp_path):
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 't.db'}"
    engine = create_engine(url)
    first = interceptors.install({"kind": "sql_failure", "url": url, "on": ["execute"]})
    second = interceptors.install({"kind": "sql_error", "url": url, "table": "nowhere"})
    first.remove()
    assert _events_on(engine)  # still armed for the second hook
    assert not _statement_fails(engine)  # its table is not in the statement
    second.remove()
    assert not _events_on(engine)


def test_user_listeners_survive_the_hook_and_keep_their_flag(tmp_path):
    from sqlalchemy import create_engine, event, text

    url = f"sqlite:///{tmp_path / 't.db'}"
    engine = create_engine(url)
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    handle = interceptors.install({"kind": "sql_failure", "url": url, "rate": 0})
    handle.remove()
    with engine.connect() as conn:
        conn.execute(text("select 2"))
    assert seen == ["select 2"]
    assert engine._has_events


def _dispatch_handlers(client: Any) -> list[Any]:
    from mlchaos_orchestration.interceptors import s3

    class Request:
        url = "http://localhost/bucket/key"

    responses = client.meta.events.emit("before-send.s3.GetObject", request=Request())
    return [handler for handler, _ in responses if handler is s3._dispatch]


def test_s3_clients_lose_the_dispatcher_when_the_last_hook_goes():
    import boto3
    import botocore.session

    create_client = botocore.session.Session.create_client
    session = boto3.session.Session(
        aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
    )
    first = interceptors.install({"kind": "s3_failure", "bucket": "a", "rate": 1})
    second = interceptors.install({"kind": "s3_failure", "bucket": "b", "rate": 1})
    client = session.client("s3", endpoint_url="http://localhost:1")
    assert len(_dispatch_handlers(client)) == 1
    first.remove()
    assert len(_dispatch_handlers(client)) == 1  # b is still faulted
    second.remove()
    assert _dispatch_handlers(client) == []
    assert botocore.session.Session.create_client is create_client


_INJECT = """
import json, sys
from mlchaos_orchestration.core import control
from mlchaos_orchestration.core.experiment import parse_experiment
exp = parse_experiment(json.loads(sys.argv[2]))
control.inject(sys.argv[1], exp, exp.faults[0], seed=3)
"""


def test_idle_watch_arms_a_fault_injected_by_another_process_then_disarms(
    mlchaos_home: Any, tmp_path: Any
) -> None:
    """Dormant means no hook at all, yet a fault that becomes active in another process reaches
    an engine this reader already holds within about one watch interval, and leaves it pristine
    again when its lease ends."""
    import json
    import subprocess
    import sys
    import time

    from sqlalchemy import create_engine

    from mlchaos_orchestration.core import control
    from mlchaos_orchestration.core.experiment import parse_experiment
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.interceptors.ledger_sync import LedgerHooks

    url = f"sqlite:///{tmp_path / 'features.db'}"
    spec = {
        "name": "late-fault",
        "faults": [{"fault": "connector_failure", "url": url, "rate": 1.0, "on": ["execute"]}],
        "safety": {"allowed_targets": [f"{url}#*"]},
    }
    ledger = Ledger()
    exp = parse_experiment(spec)
    run_id = control.begin_run(exp, run_key="r", orchestrator="plain", pipeline="p", ledger=ledger)
    engine = create_engine(url)
    with LedgerHooks(ledger, run_id=run_id, interval_s=0.1) as watch:
        assert not watch.handles and not _events_on(engine) and not _statement_fails(engine)
        cmd = [sys.executable, "-c", _INJECT, run_id, json.dumps(spec)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        injected = time.monotonic()
        while not _statement_fails(engine) and time.monotonic() - injected < 5:
            time.sleep(0.02)
        assert time.monotonic() - injected < 1.0  # armed within about one interval
        control.finish(run_id, ledger=ledger)  # the lease ends
        ended = time.monotonic()
        while _statement_fails(engine) and time.monotonic() - ended < 5:
            time.sleep(0.02)
        assert time.monotonic() - ended < 1.0
        assert not _events_on(engine)
