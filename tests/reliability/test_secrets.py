"""Secrets: a canary password in a PostgreSQL URL and a canary webhook URL never reach logs,
stdout/stderr, the ledger (every table dumped) or the alert text, for a run that applies
connector_failure on that URL and alerts to that webhook (in-process and through the CLI)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from mlchaos_orchestration.core.ledger import Ledger, metadata

PASSWORD = "CanaryPw-7f3a9"
TOKEN = "CanaryHook-5b1e2"

PIPELINE = """
import os
import sqlalchemy as sa
from mlchaos_orchestration.core.pipeline import Pipeline, Step

class SourceCheckFailed(Exception):  # the gate's own check: the source must answer
    pass

def read():
    engine = sa.create_engine(os.environ["CANARY_DB_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1")).scalar()
    except sa.exc.DBAPIError as exc:  # the driver's message (with the URL) goes into the event
        raise SourceCheckFailed(f"source unreachable: {exc}") from exc

def train(read):
    return read

pipeline = Pipeline("secret", [Step("read", read), Step("train", train, ("read",))],
                    gate="read", consumer="train")
"""


@pytest.fixture
def secret_setup(
    tmp_path: Path, pg_url: str, webhook: Any, mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    url = make_url(pg_url).set(password=PASSWORD).render_as_string(hide_password=False)
    assert PASSWORD in url
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "secretpipe.py").write_text(PIPELINE)
    spec = tmp_path / "exp.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "experiments": [
                    {
                        "name": "secret-run",
                        "gate": "read",
                        "consumer": "train",
                        "faults": [
                            {"fault": "connector_failure", "url": "${CANARY_DB_URL}", "rate": 1.0}
                        ],
                    }
                ]
            }
        )
    )
    hook_url = f"{webhook.url}/{TOKEN}"
    env = {
        "CANARY_DB_URL": url,
        "MLCHAOS_ALERT_WEBHOOK_URL": hook_url,
        "MLCHAOS_ALLOWED_TARGETS": f"{pg_url}#*",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(folder))
    return {"spec": spec, "env": env, "url": url, "hook": hook_url}


def _ledger_dump() -> str:
    ledger = Ledger()
    chunks = []
    with ledger.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            chunks.append(f"{table.name}: {rows!r}")
    return "\n".join(chunks)


def _assert_clean(where: str, text: str) -> None:
    for canary in (PASSWORD, TOKEN):
        assert canary not in text, f"{canary} leaked into {where}"


def _assert_run_exercised_the_secrets(webhook: Any) -> None:
    ledger = Ledger()
    runs = ledger.list_runs()
    assert runs, "no run recorded"
    kinds = [e.kind for e in ledger.events(runs[0]["id"])]
    assert "fault_applied" in kinds and "gate_failed" in kinds and "alert_sent" in kinds, kinds
    assert webhook.wait_for(1, timeout=10)[0].path.endswith(TOKEN)  # delivered to the secret URL


def test_canaries_never_leak_in_process(
    secret_setup: dict[str, Any],
    webhook: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.core.pipeline import load_pipeline
    from mlchaos_orchestration.core.runner import run_experiment

    caplog.set_level(logging.DEBUG)
    exp = load_experiments(secret_setup["spec"]).experiments[0]
    _assert_clean("the parsed experiment spec", repr(exp.spec()))
    result = run_experiment(load_pipeline("secretpipe:pipeline"), exp)
    assert result.verdict["verdict"] == "caught", result.verdict
    _assert_run_exercised_the_secrets(webhook)
    out = capsys.readouterr()
    _assert_clean("logs", "\n".join(r.getMessage() for r in caplog.records) + caplog.text)
    _assert_clean("stdout/stderr", out.out + out.err)
    _assert_clean("the ledger", _ledger_dump())
    _assert_clean(
        "the alert", "\n".join(r.body.decode("utf-8", "replace") for r in webhook.requests)
    )
    _assert_clean("the verdict", repr(result.verdict))


def test_canaries_never_leak_through_the_cli(
    secret_setup: dict[str, Any], webhook: Any, cli: Any
) -> None:
    done = cli(
        "run",
        str(secret_setup["spec"]),
        "--pipeline",
        "secretpipe:pipeline",
        env={**secret_setup["env"], "MLCHAOS_LOG_LEVEL": "DEBUG"},
    )
    assert done.returncode == 0, done.stderr
    assert "caught" in done.stdout
    _assert_run_exercised_the_secrets(webhook)
    _assert_clean("CLI output", done.stdout + done.stderr)
    for command in (("status",), ("restore",), ("abort",)):
        more = cli(*command, env=secret_setup["env"])
        _assert_clean(f"mlchaos {' '.join(command)}", more.stdout + more.stderr)
    _assert_clean("the ledger", _ledger_dump())
    _assert_clean(
        "the alert", "\n".join(r.body.decode("utf-8", "replace") for r in webhook.requests)
    )
