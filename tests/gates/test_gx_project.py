"""An existing GX project as the gate: a real file data context made here with
``gx.get_context(mode="file")``, a suite, a checkpoint with UpdateDataDocsAction; the checkpoint
runs with its actions (Data Docs and the validation store written). Violations are detections
(GateFailed), a missing project / checkpoint / suite is a broken gate (GateSuiteError). GX's
exports load whatever the case of expectation names. The Airflow gate operator reads its frame
through an Airflow Connection (``conn_id``: SQLite, and a real PostgreSQL on loopback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from mlchaos_orchestration.errors import SpecError
from mlchaos_orchestration.gates import gx as gate

KL = {"column": "kind", "partition_object": {"values": ["a", "b"], "weights": [0.5, 0.5]}}
CLEAN = pd.DataFrame({"amount": [1.0, 2.5, 40.0, 99.0], "kind": ["a", "b", "a", "b"]})
FAULTED = pd.DataFrame({"amount": [1.0, None, 400.0, 99.0], "kind": ["a", "a", "a", "a"]})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's GX project: dataframe asset, suite, validation definition, checkpoint."""
    import great_expectations as gx

    root = tmp_path_factory.mktemp("gx_project")
    context = gx.get_context(mode="file", project_root_dir=str(root))
    batch = (
        context.data_sources.add_pandas("orders_src")
        .add_dataframe_asset("orders")
        .add_batch_definition_whole_dataframe("whole")
    )
    expectations = [
        gx.expectations.ExpectColumnValuesToNotBeNull(column="amount"),
        gx.expectations.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=100),
        gx.expectations.ExpectColumnKLDivergenceToBeLessThan(**KL, threshold=0.1),
    ]
    suite = context.suites.add(gx.ExpectationSuite(name="orders_suite", expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="orders_vd", data=batch, suite=suite)
    )
    context.checkpoints.add(
        gx.Checkpoint(
            name="orders_cp",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="docs")],
        )
    )
    # a checkpoint reading its own data: a CSV file asset
    CLEAN.to_csv(root / "orders.csv", index=False)
    own = (
        context.data_sources.add_pandas("files")
        .add_csv_asset("orders_csv", filepath_or_buffer=root / "orders.csv")
        .add_batch_definition_whole_dataframe("whole")
    )
    on_file = context.validation_definitions.add(
        gx.ValidationDefinition(name="orders_csv_vd", data=own, suite=suite)
    )
    context.checkpoints.add(gx.Checkpoint(name="orders_csv_cp", validation_definitions=[on_file]))
    return root


def _validations(root: Path) -> list[Path]:
    return [p for p in (root / "gx/uncommitted/validations").rglob("*.json")]


def test_checkpoint_runs_with_its_actions(project: Path) -> None:
    before = len(_validations(project))
    checkpoint = gate.GXProject(str(project), checkpoint="orders_cp")
    clean = gate.validate_project(checkpoint, CLEAN)
    assert clean.success and clean.evaluated == 3 and clean.rows == 4
    index = project / "gx/uncommitted/data_docs/local_site/index.html"
    assert clean.data_docs == [index.as_uri()] and index.is_file()  # the action ran
    assert len(_validations(project)) == before + 1  # stored by the checkpoint

    faulted = gate.validate_project(checkpoint, FAULTED)
    assert not faulted.success
    assert [f["expectation"] for f in faulted.failed] == [
        "ExpectColumnValuesToNotBeNull",
        "ExpectColumnValuesToBeBetween",
        "ExpectColumnKLDivergenceToBeLessThan",
    ]
    assert len(_validations(project)) == before + 2
    with pytest.raises(gate.GateFailed, match="ExpectColumnValuesToNotBeNull"):
        gate.assert_gate(FAULTED, checkpoint)  # a plain pipeline's gate step
    assert len(_validations(project)) == before + 3
    page = (project / "gx/uncommitted/data_docs/local_site/validations/orders_suite").rglob("*")
    assert len([p for p in page if p.suffix == ".html"]) == 3  # Data Docs of every run

    # the project's gx/ folder itself works too; a suite by name validates the frame
    by_suite = gate.GXProject(str(project / "gx"), suite_name="orders_suite")
    assert gate.validate_project(by_suite, CLEAN).success
    assert not gate.validate_project(by_suite, FAULTED).success


def test_checkpoint_reads_its_own_data_without_a_frame(project: Path) -> None:
    checkpoint = gate.GXProject(str(project), checkpoint="orders_csv_cp")
    assert gate.validate_project(checkpoint).success
    FAULTED.to_csv(project / "orders.csv", index=False)
    try:
        failed = gate.validate_project(checkpoint)
    finally:
        CLEAN.to_csv(project / "orders.csv", index=False)
    assert not failed.success and failed.rows == 0 and len(failed.failed) == 3


@pytest.mark.parametrize(
    ("where", "checkpoint", "suite_name", "message"),
    [
        ("nowhere", "orders_cp", None, "no GX project there"),
        ("project", "nope", None, "Checkpoint with name nope was not found"),
        ("project", None, "nope", "ExpectationSuite with name nope was not found"),
    ],
)
def test_broken_project_is_a_spec_error_and_scaffolds_nothing(
    project: Path,
    tmp_path: Path,
    where: str,
    checkpoint: str | None,
    suite_name: str | None,
    message: str,
) -> None:
    folder = project if where == "project" else tmp_path / "empty"
    with pytest.raises(SpecError, match=message):
        gate.validate_project(gate.GXProject(str(folder), checkpoint, suite_name), CLEAN)
    assert not (tmp_path / "empty").exists()


def test_gx_exports_load_whatever_the_case_of_expectation_names(
    project: Path, tmp_path: Path
) -> None:
    import great_expectations as gx

    context = gx.get_context(mode="file", project_root_dir=str(project))
    exported = context.suites.get("orders_suite").to_json_dict()
    types = [e["type"] for e in exported["expectations"]]
    assert "expect_column_kl_divergence_to_be_less_than" in types  # GX writes snake_case
    for variant in (str.lower, str.upper, lambda t: t):
        data = json.loads(json.dumps(exported))
        for item in data["expectations"]:
            item["type"] = variant(item["type"])
        path = tmp_path / "suite.json"
        path.write_text(json.dumps(data))
        assert gate.suite_problems(path) == []
        result = gate.validate_frame(FAULTED, gate.load_suite_specs(path))
        assert [f["expectation"] for f in result.failed][-1] == (
            "ExpectColumnKLDivergenceToBeLessThan"
        )
    camel = {
        "name": "s",
        "expectations": [
            {"type": "ExpectColumnKLDivergenceToBeLessThan", "kwargs": {**KL, "threshold": 0.1}}
        ],
    }
    assert gate.validate_frame(CLEAN, camel).success


OPERATOR = r"""
import json, sys, warnings
from types import SimpleNamespace
warnings.simplefilter("ignore")
from mlchaos_orchestration.airflow.gate import GateSuiteError, GreatExpectationsGateOperator
from mlchaos_orchestration.gates.gx import GateFailed

project, conn_ids = sys.argv[1], sys.argv[2:]
dormant = SimpleNamespace(conf={}, run_id="manual__1", dag_id="orders")  # no chaos requested
context = {"ds": "2026-11-20", "dag_run": dormant}
out = {}
def run(name, **kwargs):
    try:
        done = GreatExpectationsGateOperator(task_id=name, **kwargs).execute(context)
        out[name] = ["passed", done["rows"], done["data_docs"]]
    except (GateFailed, GateSuiteError) as exc:
        out[name] = [type(exc).__name__, str(exc)[:300]]
for conn_id in conn_ids:
    for table in ("clean", "faulted"):
        run(f"{conn_id}-{table}", gx_project_dir=project, checkpoint="orders_cp",
            sql=f"SELECT * FROM {table}", conn_id=conn_id)
run("suite-spec", suite={"name": "s", "expectations": [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}}]},
    sql="SELECT * FROM faulted", conn_id=conn_ids[0])
run("own-data", gx_project_dir=project, checkpoint="orders_csv_cp")
run("no-checkpoint", gx_project_dir=project, checkpoint="nope", sql="SELECT 1", conn_id=conn_ids[0])
print("@@" + json.dumps(out))
"""


def _tables(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        CLEAN.to_sql("clean", conn, index=False)
        FAULTED.to_sql("faulted", conn, index=False)
    engine.dispose()


@pytest.mark.timeout(600)
def test_airflow_gate_operator_reads_through_connections(
    project: Path, tmp_path: Path, pg_url: str
) -> None:
    sqlite = tmp_path / "orders.db"
    _tables(f"sqlite:///{sqlite}")
    _tables(pg_url)
    pg = sa.engine.make_url(pg_url)
    conns: dict[str, Any] = {
        "orders_sqlite": {"conn_type": "sqlite", "host": str(sqlite)},
        "orders_pg": {
            "conn_type": "postgres",
            "host": pg.host,
            "port": pg.port,
            "login": pg.username,
            "password": pg.password,
            "schema": pg.database,
        },
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLCHAOS_"))}
    env.update({f"AIRFLOW_CONN_{k.upper()}": json.dumps(v) for k, v in conns.items()})
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), MLCHAOS_HOME=str(tmp_path / "mlchaos"))
    proc = subprocess.run(
        [sys.executable, "-c", OPERATOR, str(project), *conns],
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("@@"))[2:])
    docs = [(project / "gx/uncommitted/data_docs/local_site/index.html").as_uri()]
    for conn_id in conns:
        assert out[f"{conn_id}-clean"] == ["passed", 4, docs], out
        kind, message = out[f"{conn_id}-faulted"]
        assert kind == "GateFailed" and "ExpectColumnKLDivergenceToBeLessThan" in message
    assert out["suite-spec"][0] == "GateFailed"  # the YAML / mapping spec stays
    assert out["own-data"] == ["passed", 0, []]  # no Data Docs action on that checkpoint
    kind, message = out["no-checkpoint"]
    assert kind == "GateSuiteError" and "Checkpoint with name nope was not found" in message
