"""The verdict-evidence matrix of issue 9 on real Dagster (execute in process, temp instance).

Graphs this project did not write:

* ``orders`` / ``orders_id_has_no_nulls`` - Dagster's documentation example of a BLOCKING asset
  check (docs "Asset checks" -> "Blocking asset checks"), written out verbatim: the asset writes
  ``orders.csv`` itself and returns nothing, the check reads the file. Plus a consumer reading the
  file (``deps=[orders]``), as the docs' downstream assets do.
* ``payments``: an ingest asset reading a landing file, a blocking check reading that file, a
  consumer; ``payments`` has a RetryPolicy (a transient source error is retried).
* ``boom``: an asset that fails, watched by the user's own run-failure sensor (dormant runs).

User alert channels are real: dagster-slack's ``make_slack_on_run_failure_sensor`` talking to a
Slack-compatible endpoint on loopback (WebhookReceiver answering ``{"ok": true}`` or 500), and a
plain ``@run_failure_sensor`` posting to a WebhookReceiver.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.dagster import gx_blocking_check, run_experiment_dagster, with_chaos
from mlchaos_orchestration.dagster.request import (
    TAG_EXPERIMENT,
    TAG_EXPERIMENT_SPEC,
    TAG_EXPERIMENTS_FILE,
)
from mlchaos_orchestration.testing import WebhookReceiver

CONSUMED: list[str] = []
FLAKY = {"failures_left": 0}
LANDING: dict[str, Path] = {}


# ------------------------------------------------------------ Dagster docs: blocking asset check
@dg.asset
def orders():
    orders_df = pd.DataFrame({"order_id": [1, 2], "item_id": [432, 878]})
    orders_df.to_csv("orders.csv")


@dg.asset_check(asset=orders, blocking=True)
def orders_id_has_no_nulls():
    orders_df = pd.read_csv("orders.csv")
    num_null_order_ids = orders_df["order_id"].isna().sum()
    return dg.AssetCheckResult(
        passed=bool(num_null_order_ids == 0),
    )


@dg.asset(deps=[orders])
def orders_report() -> None:
    CONSUMED.append(f"orders_report:{len(pd.read_csv('orders.csv'))}")


# ------------------------------------------------------------ landing file -> ingest -> gate
@dg.asset(retry_policy=dg.RetryPolicy(max_retries=1))
def payments() -> None:
    if FLAKY["failures_left"] > 0:
        FLAKY["failures_left"] -= 1
        raise ConnectionResetError("connection reset by peer (transient)")
    pd.read_csv(LANDING["payments"]).to_csv(LANDING["staged"], index=False)


@dg.asset_check(asset=payments, blocking=True)
def payments_amount_not_null() -> dg.AssetCheckResult:
    frame = pd.read_csv(LANDING["payments"])
    return dg.AssetCheckResult(passed=bool(frame["amount"].notna().all()))


@dg.asset(deps=[payments])
def scores() -> None:
    CONSUMED.append(f"scores:{len(pd.read_csv(LANDING['staged']))}")


@dg.asset
def boom() -> None:
    raise ValueError("the user's asset failed on its own")


# ------------------------------------------------------------ fixtures
@pytest.fixture
def data(tmp_path: Path, mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory (the docs example writes ``orders.csv`` relative to it) with a
    landing file and an unrelated file nobody reads."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLCHAOS_ALERT_WEBHOOK_URL", raising=False)
    pd.DataFrame({"id": range(40), "amount": [float(i) for i in range(40)]}).to_csv(
        work / "payments.csv", index=False
    )
    pd.DataFrame({"id": range(10), "amount": [1.0] * 10}).to_csv(work / "unused.csv", index=False)
    LANDING.update(payments=work / "payments.csv", staged=work / "staged.csv")
    CONSUMED.clear()
    FLAKY["failures_left"] = 0
    return work


def slack_sensor(endpoint: WebhookReceiver) -> dg.SensorDefinition:
    """The user's dagster-slack failure sensor, its Slack client pointed at ``endpoint``."""
    from dagster_slack import make_slack_on_run_failure_sensor
    from slack_sdk.web.client import WebClient

    sensor = make_slack_on_run_failure_sensor(
        channel="#data-alerts", slack_token="xoxb-test-token", name="user_slack_on_failure"
    )
    fn = inspect.unwrap(sensor._run_status_sensor_fn)
    clients = [
        c.cell_contents for c in fn.__closure__ or [] if isinstance(c.cell_contents, WebClient)
    ]
    assert len(clients) == 1
    clients[0].base_url = endpoint.url.rsplit("/", 1)[0] + "/api/"
    return sensor


def _defs(*sensors: dg.SensorDefinition, graph: str = "payments", **chaos: Any) -> dg.Definitions:
    if graph == "orders":
        original = dg.Definitions(
            assets=[orders, orders_report],
            asset_checks=[orders_id_has_no_nulls],
            sensors=list(sensors),
        )
    else:
        original = dg.Definitions(
            assets=[payments, scores],
            asset_checks=[payments_amount_not_null],
            sensors=list(sensors),
        )
    return with_chaos(original, **chaos)


def _step_event(instance: Any, run_id: str, step: str, kind: str) -> Any:
    return next(
        e
        for e in instance.all_logs(run_id)
        if e.dagster_event and e.step_key == step and e.dagster_event.event_type_value == kind
    )


def _events(verdict: dict[str, Any]) -> list[Any]:
    return Ledger().events(verdict["run_id"])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _nulls(target: Path, at: str | None, column: str) -> dict[str, Any]:
    fault = {"fault": "nulls", "columns": [column], "fraction": 0.5, "target": str(target)}
    return {**fault, "at": at} if at else fault


def _experiment(name: str, faults: list[dict[str, Any]], allowed: Path, **extra: Any) -> Any:
    return parse_experiment(
        {"name": name, "faults": faults, "safety": {"allowed_targets": [str(allowed)]}, **extra}
    )


# ------------------------------------------------------------ the matrix
def test_fault_on_data_the_gate_reads_is_caught_and_alerted_by_the_users_slack_sensor(
    data: Path, instance: Any
) -> None:
    before = _sha(data / "payments.csv")
    with WebhookReceiver(response_body=b'{"ok": true, "ts": "1.2"}') as slack:
        defs = _defs(slack_sensor(slack), gate="payments_amount_not_null", consumer="scores")
        exp = _experiment("landing-nulls", [_nulls(data / "payments.csv", None, "amount")], data)
        verdict = run_experiment_dagster(defs, exp, instance=instance)
        assert verdict["verdict"] == "caught", verdict
        assert "dagster_sensor:user_slack_on_failure" in verdict["reason"]
        assert len(slack.requests) == 1 and slack.requests[0].path == "/api/chat.postMessage"
    events = _events(verdict)
    reads = {e.data["role"]: e.data for e in events if e.kind == "target_read"}
    assert set(reads) == {"task", "gate"}  # scores never reads the landing file
    assert reads["gate"]["matches"] is True and reads["gate"]["read_seen"] is True
    assert reads["task"]["task"] == "payments" and reads["task"]["matches"] is True
    assert reads["task"]["upstream_of"] == ["payments_amount_not_null", "scores"]
    gate = next(e for e in events if e.kind == "gate_failed")
    assert gate.data["checks_run"] is True and gate.source == "payments_amount_not_null"
    sent = next(e for e in events if e.kind == "alert_sent")
    assert sent.data["channel"] == "dagster_sensor:user_slack_on_failure"
    assert sent.data["delivered"] is True
    ours = next(e for e in events if e.kind == "alert_failed")  # ours: no webhook configured
    assert ours.data["channel"] == "mlchaos_webhook"
    assert CONSUMED == [] and _sha(data / "payments.csv") == before


def test_fault_on_a_target_no_step_reads_is_not_reached(data: Path, instance: Any) -> None:
    defs = _defs(gate="payments_amount_not_null", consumer="scores")
    exp = _experiment("unused-nulls", [_nulls(data / "unused.csv", None, "amount")], data)
    verdict = run_experiment_dagster(defs, exp, instance=instance)
    assert verdict["verdict"] == "not_reached", verdict
    assert "no task read" in verdict["reason"]
    events = _events(verdict)
    applied = next(e for e in events if e.kind == "fault_applied")
    assert applied.data["fingerprint"][str(data / "unused.csv")] != "absent"
    assert not [e for e in events if e.kind == "target_read"]  # neither gate nor consumer read it
    assert CONSUMED == ["scores:40"]


@pytest.mark.parametrize("at", ["orders_id_has_no_nulls", None])
def test_docs_pattern_asset_rewrites_its_own_file(
    data: Path, instance: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch, at: str | None
) -> None:
    """Dagster's documented blocking check: ``orders`` writes orders.csv, the check reads it.
    With ``at`` naming the check, the fault lands after ``orders`` wrote the file and the check
    catches it; without ``at`` it lands before the run, ``orders`` rewrites the file and the
    verdict says the fault never reached the pipeline (the old ``silent`` was a lie)."""
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    target = data / "orders.csv"
    pd.DataFrame({"order_id": [7, 8], "item_id": [1, 2]}).to_csv(target)  # yesterday's file
    before = _sha(target)
    defs = _defs(graph="orders", gate="orders_id_has_no_nulls", consumer="orders_report")
    exp = _experiment("orders-nulls", [_nulls(target, at, "order_id")], data)
    verdict = run_experiment_dagster(defs, exp, instance=instance)
    events = _events(verdict)
    applied = next(e for e in events if e.kind == "fault_applied")
    reads = [(e.data["role"], e.data["matches"]) for e in events if e.kind == "target_read"]
    if at:
        assert verdict["verdict"] == "caught", verdict
        assert applied.source.startswith("orders (before orders_id_has_no_nulls)")
        run = verdict["dagster_run_id"]
        producer = _step_event(instance, run, "orders", "STEP_START")
        check = _step_event(instance, run, "orders_orders_id_has_no_nulls", "STEP_START")
        assert (
            producer.timestamp < applied.ts < check.timestamp
        )  # after the write, before the check
        assert reads == [("gate", True)]
        assert next(e for e in events if e.kind == "gate_failed").data["checks_run"] is True
        assert CONSUMED == [] and webhook.wait_for(1, timeout=10)
        assert _sha(target) != before  # restored to what `orders` wrote in this run
    else:
        assert verdict["verdict"] == "not_reached", verdict
        assert "rewritten" in verdict["reason"]
        assert reads == [("gate", False), ("consumer", False)]
        assert CONSUMED == ["orders_report:2"] and webhook.requests == []
    restored = pd.read_csv(target)
    assert restored["order_id"].notna().all() and len(restored) == 2


@pytest.mark.parametrize("failures", [1, 2])
def test_control_run_with_a_transient_failure_retried_is_clean(
    data: Path, instance: Any, failures: int
) -> None:
    """RetryPolicy(max_retries=1): one failure is retried (clean, retry recorded); a second
    failure is final (the only halt), attempt 2."""
    FLAKY["failures_left"] = failures
    defs = _defs(gate="payments_amount_not_null", consumer="scores")
    exp = parse_experiment({"name": "control", "control": True})
    verdict = run_experiment_dagster(defs, exp, instance=instance)
    (retry,) = [e for e in _events(verdict) if e.kind == "task_retry"]
    assert retry.source == "payments" and retry.data["attempt"] == 1
    assert "connection reset by peer" in retry.data["message"]
    assert verdict["retries"] == 1
    failed = [e for e in _events(verdict) if e.kind == "task_failed"]
    if failures == 1:
        assert verdict["verdict"] == "clean", verdict
        assert verdict["run_success"] is True and failed == []
        assert CONSUMED == ["scores:40"]
    else:
        assert verdict["verdict"] == "false_alarm", verdict
        (final,) = failed
        assert final.source == "payments"
        assert final.data["attempt"] == 2 and final.data["final"] is True
        assert CONSUMED == []


def test_alert_endpoint_answering_500_is_unalerted(data: Path, instance: Any) -> None:
    with WebhookReceiver(status_code=500, response_body=b'{"ok": false}') as slack:
        defs = _defs(slack_sensor(slack), gate="payments_amount_not_null", consumer="scores")
        exp = _experiment("landing-nulls", [_nulls(data / "payments.csv", None, "amount")], data)
        verdict = run_experiment_dagster(defs, exp, instance=instance)
        assert len(slack.requests) == 1  # the sensor tried; Slack refused
    assert verdict["verdict"] == "unalerted", verdict
    failed = {e.data["channel"]: e.data for e in _events(verdict) if e.kind == "alert_failed"}
    assert failed["dagster_sensor:user_slack_on_failure"]["delivered"] is False
    assert "SlackApiError" in failed["dagster_sensor:user_slack_on_failure"]["status"]
    assert not [e for e in _events(verdict) if e.kind == "alert_sent"]


def test_gate_with_a_misspelled_expectation_crashes_and_is_never_caught(
    data: Path, instance: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    suite = {
        "name": "payments",
        "expectations": [{"type": "ExpectColumnValuesToNotBeNul", "kwargs": {"column": "amount"}}],
    }
    gate = gx_blocking_check(
        payments,
        suite,
        name="payments_gx",
        load_frame=lambda context: pd.read_csv(LANDING["payments"]),
    )
    defs = with_chaos(
        dg.Definitions(assets=[payments, scores], asset_checks=[gate]),
        gate="payments_gx",
        consumer="scores",
    )
    exp = _experiment("landing-nulls", [_nulls(data / "payments.csv", None, "amount")], data)
    verdict = run_experiment_dagster(defs, exp, instance=instance)
    assert verdict["verdict"] == "gate_crashed", verdict
    crashed = next(e for e in _events(verdict) if e.kind == "gate_crashed")
    assert crashed.source == "payments_gx" and crashed.data["error_type"] == "SpecError"
    assert "ExpectColumnValuesToNotBeNul" in crashed.data["message"]
    assert not [e for e in _events(verdict) if e.kind == "gate_failed"]
    assert CONSUMED == []


def test_dormant_failed_run_is_unchanged_and_the_users_sensor_fires_once(
    data: Path, instance: Any
) -> None:
    with WebhookReceiver() as hook:

        @dg.run_failure_sensor(name="user_webhook_on_failure")
        def user_webhook_on_failure(context: dg.RunFailureSensorContext) -> None:
            import urllib.request

            body = json.dumps({"run": context.dagster_run.run_id}).encode()
            urllib.request.urlopen(  # noqa: S310 - loopback test endpoint
                urllib.request.Request(hook.url, data=body, method="POST"), timeout=5
            )

        plain = dg.Definitions(assets=[boom, orders], sensors=[user_webhook_on_failure])
        outcomes = {}
        for label, defs in (("plain", plain), ("with_chaos", with_chaos(plain))):
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance, raise_on_error=False
            )
            stats = {s.step_key: s.status for s in instance.get_run_step_stats(result.run_id)}
            outcomes[label] = (result.success, result.dagster_run.status, stats)
            before = len(hook.requests)
            for sensor in defs.sensors:  # what the daemon does: every running sensor ticks
                if (
                    sensor.default_status == dg.DefaultSensorStatus.RUNNING
                    or sensor.name.startswith("user")
                ):
                    _tick_for(sensor, instance, result.run_id)
            assert len(hook.requests) - before == 1, label  # the user's sensor, exactly once
    assert outcomes["plain"] == outcomes["with_chaos"]
    assert outcomes["plain"][0] is False
    assert Ledger().list_runs() == []


def _tick_for(sensor: Any, instance: Any, run_id: str) -> None:
    from dagster._core.definitions.run_status_sensor_definition import RunStatusSensorCursor

    records = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=50).records
    record = next(r for r in records if r.run_id == run_id)
    status = getattr(sensor, "_run_status", None)
    if status != dg.DagsterRunStatus.FAILURE:
        return
    cursor = RunStatusSensorCursor(record_id=record.storage_id - 1).to_json()
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    assert all(r.error is None for r in data.dagster_run_reactions)


@pytest.mark.parametrize("how", ["file", "inline"])
def test_run_tags_widening_the_allowlist_are_refused_before_anything_is_touched(
    data: Path, instance: Any, tmp_path: Path, how: str
) -> None:
    trusted = tmp_path / "deployment.yaml"
    trusted.write_text("experiments:\n  - {name: control, control: true}\n")
    spec = {
        "name": "widen",
        "safety": {"allowed_targets": [str(data)]},
        "faults": [_nulls(data / "payments.csv", "payments_amount_not_null", "amount")],
    }
    if how == "file":
        evil = tmp_path / "evil.yaml"
        evil.write_text(json.dumps({"experiments": [spec]}))
        tags = {TAG_EXPERIMENT: "widen", TAG_EXPERIMENTS_FILE: str(evil)}
    else:
        tags = {TAG_EXPERIMENT_SPEC: json.dumps(spec)}
    before = _sha(data / "payments.csv")
    defs = _defs(experiments_file=str(trusted), gate="payments_amount_not_null", consumer="scores")
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, tags=tags, raise_on_error=False
    )
    assert not result.success
    errors = [
        e.event_specific_data.error
        for e in result.all_events
        if getattr(e.event_specific_data, "error", None) is not None
    ]
    refusal = f"allowed_targets '{data}' is outside the deployment allowlist: refused"
    assert any(refusal in error.message for error in errors), [e.message for e in errors]
    assert any(
        error.cls_name == "SafetyError" and "\n" not in error.message.strip()
        for err in errors
        for error in _chain(err)
    )
    assert _sha(data / "payments.csv") == before
    assert Ledger().list_runs() == [] and Ledger().live_leases() == []
    assert CONSUMED == []


def _chain(error: Any) -> list[Any]:
    out = []
    while error is not None:
        out.append(error)
        error = error.cause
    return out


# ------------------------------------------------------------ cheap checks (no Dagster run)
def test_with_chaos_refuses_unknown_gate_and_consumer_names(mlchaos_home: Path) -> None:
    from mlchaos_orchestration.errors import SpecError

    original = dg.Definitions(assets=[orders, orders_report], asset_checks=[orders_id_has_no_nulls])
    with pytest.raises(SpecError) as info:
        with_chaos(original, gate="orders_id_has_no_null", consumer="orders_reprot")
    text = str(info.value)
    assert "\n" not in text
    assert "gate 'orders_id_has_no_null'" in text and "'orders_id_has_no_nulls'" in text
    assert "consumer 'orders_reprot'" in text


def test_runner_refuses_unknown_names_before_touching_anything(data: Path, instance: Any) -> None:
    defs = _defs(gate="payments_amount_not_null", consumer="scores")
    before = _sha(data / "payments.csv")
    exp = _experiment(
        "typo", [_nulls(data / "payments.csv", None, "amount")], data, consumer="scorez"
    )
    verdict = run_experiment_dagster(defs, exp, instance=instance)
    assert verdict["verdict"] == "error"
    assert "consumer 'scorez'" in verdict["reason"] and "did you mean 'scores'" in verdict["reason"]
    assert verdict["run_success"] is None and _sha(data / "payments.csv") == before
    assert not [e for e in _events(verdict) if e.kind == "fault_applied"]


def test_with_chaos_keeps_every_field_of_the_users_definitions(mlchaos_home: Path) -> None:
    job = dg.define_asset_job("orders_job", selection=["orders"])

    @dg.sensor(job=job)
    def user_sensor() -> None:
        return None

    original = dg.Definitions(
        assets=[orders, orders_report],
        asset_checks=[orders_id_has_no_nulls],
        jobs=[job],
        schedules=[dg.ScheduleDefinition(job=job, cron_schedule="0 * * * *")],
        sensors=[user_sensor],
        executor=dg.in_process_executor,
        loggers={"quiet": dg.colored_console_logger},
        resources={"io_manager": dg.FilesystemIOManager()},
        metadata={"team": "orders"},
    )
    wrapped = with_chaos(original, gate="orders_id_has_no_nulls")
    # the executor is the user's, wrapped for the run start / end of tag-launched chaos runs
    assert isinstance(wrapped.executor, dg.ExecutorDefinition)
    assert wrapped.executor is not original.executor
    assert wrapped.executor.name == original.executor.name == "in_process"
    assert wrapped.executor.config_schema is original.executor.config_schema
    assert wrapped.executor.get_requirements({}) == original.executor.get_requirements({})
    assert with_chaos(wrapped).executor is wrapped.executor  # never wrapped twice
    assert wrapped.loggers == original.loggers
    assert list(wrapped.jobs) == list(original.jobs)
    assert list(wrapped.schedules) == list(original.schedules)
    assert wrapped.metadata["team"].value == "orders"
    assert {s.name for s in wrapped.sensors} >= {"user_sensor", "mlchaos_alert_on_failure"}
    assert wrapped.component_tree is original.component_tree
    assert {a.key for a in wrapped.assets} == {a.key for a in original.assets}
    wrapped.resolve_job_def("orders_job")  # still resolvable against the wrapped assets


class CsvIOManager(dg.ConfigurableIOManager):
    """A user's IO manager: one CSV per asset under ``root`` (the file a check then reads)."""

    root: str

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        obj.to_csv(Path(self.root) / f"{context.asset_key.path[-1]}.csv", index=False)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        return pd.read_csv(Path(self.root) / f"{context.asset_key.path[-1]}.csv")


@dg.asset
def customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": range(20), "country": ["DE"] * 20})


@dg.asset_check(asset=customers, blocking=True)
def customers_complete() -> dg.AssetCheckResult:
    frame = pd.read_csv("customers.csv")
    return dg.AssetCheckResult(passed=bool(frame["country"].notna().all()))


@dg.asset
def churn(customers: pd.DataFrame) -> int:
    CONSUMED.append(f"churn:{len(customers)}")
    return len(customers)


def test_fault_on_a_file_the_io_manager_writes_lands_after_the_write(
    data: Path, instance: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value-returning asset: its IO manager writes customers.csv AFTER the compute returned,
    so the fault lands after ``handle_output`` (applied at compute end it would be overwritten)."""
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    pd.DataFrame({"customer_id": [1], "country": ["FR"]}).to_csv("customers.csv", index=False)
    defs = with_chaos(
        dg.Definitions(
            assets=[customers, churn],
            asset_checks=[customers_complete],
            resources={"io_manager": CsvIOManager(root=str(data))},
        ),
        gate="customers_complete",
        consumer="churn",
    )
    exp = _experiment(
        "customers-nulls", [_nulls(data / "customers.csv", "customers_complete", "country")], data
    )
    verdict = run_experiment_dagster(defs, exp, instance=instance)
    assert verdict["verdict"] == "caught", verdict
    events = _events(verdict)
    applied = next(e for e in events if e.kind == "fault_applied")
    run = verdict["dagster_run_id"]
    output = _step_event(instance, run, "customers", "STEP_OUTPUT")  # before handle_output
    check = _step_event(instance, run, "customers_customers_complete", "STEP_START")
    assert output.timestamp < applied.ts < check.timestamp
    assert [(e.data["role"], e.data["matches"]) for e in events if e.kind == "target_read"] == [
        ("gate", True)
    ]
    assert CONSUMED == []
    assert pd.read_csv(data / "customers.csv")["country"].notna().all()  # restored


def test_where_a_stored_fault_lands_after_its_producer() -> None:
    """Compute end when nothing goes to an IO manager, else after ``handle_output``."""
    from mlchaos_orchestration.dagster.compute import io_managed
    from mlchaos_orchestration.dagster.wrap import build_scopes

    assert io_managed(None) is True  # unannotated ``None``: Dagster pickles it
    assert io_managed(None, nothing=True) is False  # ``-> None``
    assert io_managed(dg.MaterializeResult()) is False
    assert io_managed((dg.MaterializeResult(), dg.MaterializeResult())) is False
    assert io_managed(pd.DataFrame()) is True
    scopes = build_scopes(
        dg.Definitions(
            assets=[orders, orders_report, payments, scores],
            asset_checks=[orders_id_has_no_nulls],
        )
    )
    assert scopes.producers("orders_id_has_no_nulls") == ("orders",)  # a check: its asset
    assert scopes.producers("orders_report") == ("orders",)  # an asset: its upstream assets
    assert scopes.producers("orders:input") == ("orders",)
    assert scopes.producers("orders") == ()  # a root asset: before the run
    assert scopes.feeds("orders", ["orders_id_has_no_nulls", "orders_report", "scores"]) == [
        "orders_id_has_no_nulls",
        "orders_report",
    ]
