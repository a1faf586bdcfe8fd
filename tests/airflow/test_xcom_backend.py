"""XCom data faults: Airflow's own tutorial_taskflow_api (unmodified, a copy with add_chaos) run
with dag.test() in a fresh process under the mlchaos XCom backend. A chaos run changes what
``transform`` receives from ``extract``; the stored XCom stays as ``extract`` pushed it; the
verdict carries the evidence. A dormant run is exactly the plain tutorial."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.sdk.bases.xcom import BaseXCom

from mlchaos_orchestration.airflow.dagtest import run_batch_in_subprocess

DAG_ID = "tutorial_taskflow_api_xcom"
ORDERS = {"1001": 301.27, "1002": 433.21, "1003": 502.22}  # what the tutorial's extract returns
TARGET = "xcom://extract/return_value"


class CountingXCom(BaseXCom):
    """The user's own backend (wrapped by ChaosXCom): counts its deserialisations in a file."""

    @staticmethod
    def deserialize_value(result: Any) -> Any:
        with open(os.environ["COUNTING_XCOM_LOG"], "a", encoding="utf-8") as log:
            log.write("pull\n")
        return BaseXCom.deserialize_value(result)


@pytest.fixture
def xcom_env(airflow_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **airflow_env,
        "AIRFLOW__CORE__XCOM_BACKEND": "mlchaos_orchestration.airflow.xcom_backend.ChaosXCom",
        "AIRFLOW__MLCHAOS__XCOM_BACKEND": "test_xcom_backend.CountingXCom",
        "COUNTING_XCOM_LOG": str(tmp_path / "pulls.log"),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
        "MLCHAOS_HOME": str(tmp_path),
        "MLCHAOS_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
    }


def _ledger(env: dict[str, str]) -> Any:
    from mlchaos_orchestration.core.ledger import Ledger

    return Ledger(env["MLCHAOS_LEDGER_URL"])


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_fault_on_the_value_extract_passes_to_transform(xcom_env: dict[str, str]) -> None:
    from mlchaos_orchestration.airflow.xcom_backend import fingerprint
    from mlchaos_orchestration.core.control import run_id_for

    dormant, chaos = run_batch_in_subprocess(
        [
            {"dag_id": DAG_ID, "conf": {}, "logical_date": "2026-11-20"},
            {"dag_id": DAG_ID, "conf": {"mlchaos": {}}, "logical_date": "2026-11-21"},
        ],
        xcom_env,
    )
    clean_total = round(sum(ORDERS.values()), 2)
    pulls = Path(xcom_env["COUNTING_XCOM_LOG"]).read_text().count("pull")
    assert pulls >= 4  # the wrapped backend served every pull (2 runs x transform, load)
    # dormant: the tutorial as without chaos (the chaos tasks no-op / skip)
    assert dormant["state"] == "success"
    assert {k: v for k, v in dormant["tasks"].items() if "mlchaos" not in k} == dict.fromkeys(
        ("extract", "transform", "load"), "success"
    )
    assert dormant["xcoms"]["extract"] == ORDERS
    assert round(dormant["xcoms"]["transform"]["total_order_value"], 2) == clean_total
    # chaos: transform received a changed value; the stored XCom is what extract pushed
    assert chaos["xcoms"]["extract"] == ORDERS
    faulted_total = chaos["xcoms"]["transform"]["total_order_value"]
    assert round(faulted_total, 2) != clean_total
    assert chaos["tasks"]["transform"] == "success"
    assert chaos["tasks"]["mlchaos_teardown.verdict"] == "failed"  # a silent fault fails it

    ledger = _ledger(xcom_env)
    run_id = run_id_for(chaos["run_id"], "xcom-out-of-range")
    events = ledger.events(run_id)
    [applied] = [e for e in events if e.kind == "fault_applied"]
    assert applied.source == "transform" and applied.data["site"]["input"] == TARGET
    assert applied.data["rows_changed"] == 1
    assert applied.data["stored_fingerprint"] == fingerprint(ORDERS)
    assert applied.data["fingerprint"][TARGET] != fingerprint(ORDERS)
    [read] = [e for e in events if e.kind == "target_read" and e.data.get("target") == TARGET]
    assert read.data["role"] == "consumer" and read.data["task"] == "transform"
    assert read.data["fingerprint"] == applied.data["fingerprint"][TARGET]

    verdict = ledger.get_run(run_id)["verdict_detail"]
    assert verdict["verdict"] == "silent"  # no gate: transform used the faulted orders
    assert verdict["reason"].startswith("consumer transform started; out_of_range changed")
    [fault] = verdict["evidence"]["faults"]
    assert fault["reached"] is True and fault["fault"] == "out_of_range"
    assert TARGET in fault["why"] and "transform" in fault["why"]
    assert verdict["evidence"]["fingerprints"] == applied.data["fingerprint"]
    [evidence_read] = verdict["evidence"]["reads"]  # the pull's read, linked by its pull_id
    assert (evidence_read["task"], evidence_read["target"]) == ("transform", TARGET)
    assert fault["reads"] == [{k: v for k, v in evidence_read.items() if k != "lease_id"}]
    assert ledger.get_run(run_id_for(dormant["run_id"], "xcom-out-of-range")) is None


def test_xcom_targets_name_a_task_and_a_key() -> None:
    from mlchaos_orchestration.airflow.xcom_backend import xcom_target

    assert xcom_target("xcom://extract") == ("extract", "return_value")
    assert xcom_target("xcom://transform/total_order_value") == ("transform", "total_order_value")
    assert [xcom_target(t) for t in ("xcom://", "s3://b/k", None, {"url": "x"})] == [None] * 4


@pytest.mark.parametrize(
    "value",
    [
        ORDERS,
        [{"id": 1, "amount": 2.5}, {"id": 2, "amount": 4.0}],
        {"id": [1, 2, 3], "amount": [2.5, 4.0, 1.0]},
        pd.DataFrame({"id": [1, 2], "amount": [2.5, 4.0]}),
    ],
    ids=["dict_of_scalars", "records", "columns", "dataframe"],
)
def test_values_round_trip_through_a_frame_in_their_own_shape(value: Any) -> None:
    from mlchaos_orchestration.airflow.xcom_backend import as_frame, fingerprint

    frame, back = as_frame(value)
    again = back(frame.copy())
    assert type(again) is type(value) and fingerprint(again) == fingerprint(value)


def test_other_values_are_refused_and_pulls_outside_a_task_are_untouched() -> None:
    from mlchaos_orchestration.airflow.xcom_backend import _pulled, as_frame

    for value in (42, "text", [1, 2], {"a": {"nested": 1}}):
        with pytest.raises(TypeError, match="data faults cannot act on it"):
            as_frame(value)
    value = {"1001": 1.0}
    assert _pulled(value, {"task_id": "extract", "key": "return_value"}) is value


def test_without_at_the_gate_and_the_consumer_pull_the_faulted_value() -> None:
    from mlchaos_orchestration.airflow.runtime import ChaosRun
    from mlchaos_orchestration.airflow.xcom_backend import _entries
    from mlchaos_orchestration.core.experiment import parse_experiment

    faults = [
        {"fault": "nulls", "columns": ["value"], "target": "xcom://extract"},
        {"fault": "drift", "columns": ["value"], "target": "xcom://extract/other", "at": "load"},
        {"fault": "nulls", "columns": ["value"]},  # stored data: not an XCom fault
    ]
    exp = parse_experiment({"name": "x", "faults": faults})
    run = ChaosRun(exp, "key", "id", gate="check", consumer="transform")

    def chosen(puller: str, producer: str, key: str) -> list[str]:
        return [e.name for e in _entries(run, puller, producer, key)]

    assert chosen("transform", "extract", "return_value") == ["nulls"]
    assert chosen("check", "extract", "return_value") == ["nulls"]
    assert chosen("load", "extract", "return_value") == []  # neither gate nor consumer
    assert chosen("load", "extract", "other") == ["drift"]
    assert chosen("transform", "extract", "other") == []  # its at: is load
