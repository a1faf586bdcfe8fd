"""The verdict-evidence matrix on Airflow: real ``dag.test()`` runs of user-style DAGs
(tests/airflow/dags/evidence_dags.py) and of Airflow's own example DAGs, alerting through the
users' own channels (the Slack provider's notifier against a real HTTP receiver, the SMTP
provider's notifier against a real SMTP server), asserting each verdict AND the evidence it
rests on.

Runs are batched: each test starts ONE process that runs several DAG runs one after the other
(``dagtest.run_batch_in_subprocess``), because every Airflow process start and DAG parse costs
seconds. The deployment allowlist of these DAGs is their experiments file's ``defaults.safety``
(``$EV_DIR``); MLCHAOS_ALLOWED_TARGETS is unset.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow_support import python_last_line

from mlchaos_orchestration.airflow.dagtest import run_batch_in_subprocess
from mlchaos_orchestration.airflow.runtime import is_chaos_task_id
from mlchaos_orchestration.testing import WebhookReceiver
from mlchaos_orchestration.testing.servers import SmtpServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DS = "2026-11-20"
ROWS = 40


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Ev:
    env: dict[str, str]
    dir: Path
    ledger_url: str

    def ledger(self) -> Any:
        from mlchaos_orchestration.core.ledger import Ledger

        return Ledger(self.ledger_url)

    def verdict(self, outcome: dict[str, Any], experiment: str) -> dict[str, Any]:
        from mlchaos_orchestration.core.control import run_id_for

        run = self.ledger().get_run(run_id_for(outcome["run_id"], experiment))
        assert run is not None, f"no ledger run for {experiment} ({outcome['dag_id']})"
        return run["verdict_detail"]

    def kinds(self, outcome: dict[str, Any], experiment: str) -> list[str]:
        from mlchaos_orchestration.core.control import run_id_for

        return [e.kind for e in self.ledger().events(run_id_for(outcome["run_id"], experiment))]


@pytest.fixture
def ev(airflow_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ev:
    data = tmp_path / "ev"
    data.mkdir()
    rows = "\n".join(f"{1000 + i},{10.5 + i}" for i in range(ROWS))
    (data / "source.csv").write_text("order_id,amount\n" + rows + "\n")
    (data / "orders.csv").write_text((data / "source.csv").read_text())
    (data / "unread.csv").write_text((data / "source.csv").read_text())
    home = tmp_path / "mlchaos"
    home.mkdir()
    ledger_url = f"sqlite:///{home / 'ledger.db'}"
    env = {
        **airflow_env,
        "EV_DIR": str(data),
        "MLCHAOS_HOME": str(home),
        "MLCHAOS_LEDGER_URL": ledger_url,
    }
    monkeypatch.setenv("MLCHAOS_HOME", str(home))
    monkeypatch.setenv("MLCHAOS_LEDGER_URL", ledger_url)
    return Ev(env=env, dir=data, ledger_url=ledger_url)


def _chaos(name: str) -> dict[str, Any]:
    return {"mlchaos": {"experiment": name}}


def _user(outcome: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in outcome["tasks"].items() if not is_chaos_task_id(k)}


def _slack_conn(url: str) -> str:
    return json.dumps({"conn_type": "slackwebhook", "password": url})


def test_orders_matrix_on_airflow(
    ev: Ev, webhook: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Fault the gate reads / too early / on an unread file / alert endpoint 500 / misspelled
    expectation / run-conf experiment widening the allowlist: six runs, one process."""
    outside = tmp_path_factory.mktemp("outside")
    victim = outside / "precious.csv"
    victim.write_text("a\n1\n")
    widen = {
        "name": "widen",
        "faults": [{"fault": "upstream_outage", "target": str(victim), "mode": "missing"}],
        "safety": {"allowed_targets": [str(outside)]},
    }
    orders_sha = _sha(ev.dir / "source.csv")
    with WebhookReceiver(status_code=500, response_body=b"boom") as bad:
        env = {
            **ev.env,
            "AIRFLOW_CONN_EV_SLACK": _slack_conn(webhook.url),
            "AIRFLOW_CONN_EV_SLACK_BAD": _slack_conn(bad.url),
        }
        at_gate, too_early, unread, e500, typo, widened = run_batch_in_subprocess(
            [
                {"dag_id": "ev_orders", "conf": _chaos("nulls-at-gate")},
                {"dag_id": "ev_orders", "conf": _chaos("nulls-too-early")},
                {"dag_id": "ev_orders", "conf": _chaos("nulls-unread")},
                {"dag_id": "ev_orders_500", "conf": _chaos("nulls-at-gate")},
                {"dag_id": "ev_orders_typo", "conf": _chaos("nulls-at-gate")},
                {"dag_id": "ev_orders", "conf": {"mlchaos": {"experiment": widen}}},
            ],
            env,
        )
        bad_requests = bad.requests
    table: dict[str, tuple[str, str]] = {}

    # 1. a fault on the data the gate reads, applied at: the gate (after the producer)
    v = ev.verdict(at_gate, "nulls-at-gate")
    table["fault on data the gate reads (at: gate)"] = (v["verdict"], v["reason"])
    assert v["verdict"] == "caught", v
    assert _user(at_gate) == {
        "produce": "success",
        "check_orders": "failed",
        "train": "upstream_failed",
    }
    assert at_gate["tasks"]["mlchaos_inject_data"] == "success"
    assert at_gate["state"] == "failed"
    reads = v["evidence"]["reads"]
    assert [(r["task"], r["role"], r["matches"]) for r in reads] == [("check_orders", "gate", True)]
    assert v["halt_kind"] == "gate_failed" and v["halted_by"] == "check_orders"
    alerts = v["evidence"]["alerts"]
    assert [(a["channel"], a["delivered"]) for a in alerts] == [("SlackWebhookNotifier", True)]
    assert [r.json["text"] for r in webhook.requests] == [
        "check_orders failed in ev_orders",  # this run
        "check_orders failed in ev_orders_typo",  # scenario 5 alerts through the same channel
    ]
    assert at_gate["tasks"]["mlchaos_teardown.verdict"] == "success"

    # 2. the same fault applied before the producer: rewritten, the gate read clean data
    v = ev.verdict(too_early, "nulls-too-early")
    table["fault before its producer (no at:)"] = (v["verdict"], v["reason"])
    assert v["verdict"] == "not_reached", v
    assert "rewritten" in v["reason"]
    assert {(r["task"], r["matches"]) for r in v["evidence"]["reads"]} == {
        ("check_orders", False),
        ("train", False),
    }
    assert set(_user(too_early).values()) == {"success"}
    assert too_early["state"] == "success"

    # 3. a fault on a file no task reads
    v = ev.verdict(unread, "nulls-unread")
    table["fault on a target no task reads"] = (v["verdict"], v["reason"])
    assert v["verdict"] == "not_reached", v
    assert v["evidence"]["reads"] == [] and "no task read" in v["reason"]
    assert v["evidence"]["rows_changed"] > 0  # it was applied, it just never reached anyone
    assert v["consumer_started"]

    # 4. the user's Slack endpoint answers 500
    v = ev.verdict(e500, "nulls-at-gate")
    table["alert endpoint answers 500"] = (v["verdict"], v["reason"])
    assert v["verdict"] == "unalerted", v
    (alert,) = v["evidence"]["alerts"]
    assert alert["channel"] == "SlackWebhookNotifier" and alert["delivered"] is False
    assert "500" in alert["status"]
    assert len(bad_requests) == 1
    assert e500["tasks"]["mlchaos_teardown.verdict"] == "failed"  # unalerted is in FAIL_ON

    # 5. a misspelled expectation: the gate crashed, it checked nothing
    v = ev.verdict(typo, "nulls-at-gate")
    table["gate suite with a misspelled expectation"] = (v["verdict"], v["reason"])
    assert v["verdict"] == "gate_crashed", v
    assert v["evidence"]["gate"]["crashed"] is True
    assert "ExpectColumnValuesToNotBeNul" in v["reason"]
    assert typo["tasks"]["check_orders"] == "failed"
    assert "gate_crashed" in ev.kinds(typo, "nulls-at-gate")

    # 6. a run-conf experiment granting itself a directory outside the deployment allowlist
    assert widened["state"] == "failed"
    assert widened["tasks"]["mlchaos_setup.inject"] == "failed"
    assert _user(widened) == {
        "produce": "upstream_failed",
        "check_orders": "upstream_failed",
        "train": "upstream_failed",
    }
    refusal = f"safety.allowed_targets '{outside}' is outside the deployment allowlist: refused"
    assert refusal in widened["log"]
    assert victim.read_text() == "a\n1\n"
    assert all(r["experiment"] != "widen" for r in ev.ledger().list_runs())
    assert ev.ledger().live_leases() == []
    table["run-conf experiment widening the allowlist"] = ("refused", refusal)

    # every faulted file is byte-identical again
    assert _sha(ev.dir / "orders.csv") == orders_sha
    assert _sha(ev.dir / "unread.csv") == orders_sha
    print("\n" + "\n".join(f"{k} -> {v[0]} -> {v[1]}" for k, v in table.items()))


def test_retries_mail_dormant_form_and_structure(
    ev: Ev, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Classic operators with default_args retries (a transient gate failure then success in a
    control run; a retry then a real detection alerted by SmtpNotifier), a dormant run of a
    failing DAG with / without add_chaos, the trigger form refusing a widening target, and the
    API server's structure endpoints."""
    outside = tmp_path_factory.mktemp("outside")
    victim = outside / "precious.csv"
    victim.write_text("a\n1\n")
    with SmtpServer() as smtp:
        env = {
            **ev.env,
            "AIRFLOW_CONN_EV_SMTP": json.dumps(
                {
                    "conn_type": "smtp",
                    "host": smtp.host,
                    "port": smtp.port,
                    "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10},
                }
            ),
        }
        control, nulls, plain, dormant, form = run_batch_in_subprocess(
            [
                {"dag_id": "ev_mail", "conf": _chaos("control")},
                {"dag_id": "ev_mail", "conf": _chaos("nulls-at-gate")},
                {"dag_id": "ev_fail", "logical_date": DS},
                {"dag_id": "ev_fail_chaos", "logical_date": DS},
                {
                    "dag_id": "mlchaos_experiment",
                    "conf": {
                        "target_dag": "ev_orders",
                        "fault": "upstream_outage",
                        "mode": "missing",
                        "target": str(victim),
                    },
                    "mark_success": "^(run_target|verdict)$",
                },
            ],
            env,
        )
        mails = smtp.messages
    table: dict[str, tuple[str, str]] = {}

    # transient gate failure, then success on retry, in a control run: clean, retry recorded
    v = ev.verdict(control, "control")
    table["transient gate failure then success (control)"] = (v["verdict"], v["reason"])
    assert v["verdict"] == "clean", v
    assert v["retries"] == 1
    assert [(r["task"], r["attempt"]) for r in v["evidence"]["retries"]] == [("check_orders", 1)]
    assert set(_user(control).values()) == {"success"}
    assert control["tasks"]["mlchaos_teardown.verdict"] == "success"

    # a retry, then the user's own check fails: caught, alerted through SmtpNotifier
    v = ev.verdict(nulls, "nulls-at-gate")
    table["alert through the user's SmtpNotifier"] = (v["verdict"], v["reason"])
    assert v["verdict"] == "caught", v
    assert v["halt_kind"] == "gate_failed" and v["retries"] == 1
    assert [(a["channel"], a["delivered"]) for a in v["evidence"]["alerts"]] == [
        ("SmtpNotifier", True)
    ]
    assert [m.subject for m in mails] == ["check_orders failed"]
    assert _sha(ev.dir / "orders.csv") == _sha(ev.dir / "source.csv")

    # dormant run of a DAG whose user task fails: identical to the DAG without add_chaos
    assert plain["state"] == dormant["state"] == "failed"
    assert _user(dormant) == _user(plain)
    assert _user(plain)["transform"] == "failed" and _user(plain)["load"] == "upstream_failed"
    assert _user(plain)["right"] == "skipped" and _user(plain)["left"] == "success"
    assert {k: dormant["xcoms"].get(k) for k in _user(plain)} == {
        k: plain["xcoms"].get(k) for k in _user(plain)
    }
    assert dormant["tasks"]["mlchaos_setup.inject"] == "success"
    assert dormant["tasks"]["mlchaos_teardown.restore"] == "skipped"
    assert dormant["tasks"]["mlchaos_teardown.verdict"] == "skipped"
    callbacks = (ev.dir / "dag_callbacks.txt").read_text().splitlines()
    assert sorted(callbacks) == ["ev_fail failure transform", "ev_fail_chaos failure transform"]
    table["dormant run, user task fails"] = ("failed", "DAG on_failure_callback once, ti=transform")

    # the trigger form refuses a target outside the deployment allowlist, touching nothing
    assert form["tasks"]["build_experiment"] == "failed"
    assert "trigger form: ui-upstream_outage: safety.allowed_targets" in form["log"]
    assert victim.read_text() == "a\n1\n"
    table["trigger form widening the allowlist"] = ("refused", "build_experiment failed")

    # the API server's structure endpoints: graph and grid render, chaos tasks visible
    structure = json.loads(python_last_line(_STRUCTURE, env))
    for dag_id in ("ev_mail", "ev_fail_chaos"):
        graph, grid = structure[dag_id]["graph"], structure[dag_id]["grid"]
        assert graph["status"] == 200 and grid["status"] == 200, structure
        assert {"mlchaos_setup", "mlchaos_teardown"} <= set(graph["top"])
        assert "mlchaos_setup.inject" in graph["ids"]
        assert {"mlchaos_teardown.restore", "mlchaos_teardown.verdict"} <= set(graph["ids"])
        assert graph["teardowns"] == ["mlchaos_teardown.restore", "mlchaos_teardown.verdict"]
    assert "mlchaos_inject_data" in structure["ev_mail"]["graph"]["top"]
    assert ("produce", "mlchaos_inject_data") in {
        tuple(e) for e in structure["ev_mail"]["graph"]["edges"]
    }
    table["API structure endpoints"] = ("200", "graph + grid with the chaos tasks")
    print("\n" + "\n".join(f"{k} -> {v[0]} -> {v[1]}" for k, v in table.items()))


_STRUCTURE = """
import json, os
os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = "test-secret-not-for-prod-0123456789"
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app

client = TestClient(create_app(apps="core"), raise_server_exceptions=False)

def walk(nodes, out):
    for node in nodes:
        out.append(node)
        walk(node.get("children") or [], out)
    return out

out = {}
for dag_id in ("ev_mail", "ev_fail_chaos"):
    graph = client.get("/ui/structure/structure_data", params={"dag_id": dag_id})
    grid = client.get(f"/ui/grid/structure/{dag_id}")
    body = graph.json() if graph.status_code == 200 else {}
    nodes = walk(body.get("nodes") or [], [])
    out[dag_id] = {
        "graph": {
            "status": graph.status_code,
            "top": [n["id"] for n in body.get("nodes") or []],
            "ids": [n["id"] for n in nodes],
            "teardowns": sorted(
                n["id"] for n in nodes if n.get("setup_teardown_type") == "teardown"
            ),
            "edges": [[e["source_id"], e["target_id"]] for e in body.get("edges") or []],
        },
        "grid": {"status": grid.status_code},
    }
print(json.dumps(out))
"""


def test_airflow_example_dags_dormant_runs_are_identical(ev: Ev) -> None:
    """Airflow's own example DAGs, unmodified, with and without add_chaos: same run state, same
    task states (skips included), same return values; chaos touched nothing."""
    runs = run_batch_in_subprocess(
        [
            {"dag_id": dag_id, "logical_date": DS}
            for dag_id in (
                "example_bash_operator",
                "example_bash_operator_chaos",
                "example_short_circuit_operator",
                "example_short_circuit_operator_chaos",
            )
        ],
        ev.env,
    )
    for plain, chaos in (runs[0:2], runs[2:4]):
        assert chaos["state"] == plain["state"] == "success", (plain["state"], chaos["state"])
        assert _user(chaos) == plain["tasks"]
        assert "skipped" in set(plain["tasks"].values())
        same = {
            k: json.loads(json.dumps(v).replace(chaos["dag_id"], plain["dag_id"]))
            for k, v in chaos["xcoms"].items()
            if not is_chaos_task_id(k)
        }
        assert same == plain["xcoms"]
        assert chaos["tasks"]["mlchaos_teardown.restore"] == "skipped"
    assert runs[0]["tasks"]["this_will_skip"] == "skipped"
    assert runs[0]["xcoms"]["runme_0"].startswith("example_bash_operator__runme_0__")
    assert ev.ledger().list_runs() == []
