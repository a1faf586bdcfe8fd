"""Parse-level checks: DagBag over dags/, lazy imports, the experiment form's validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow_support import python_last_line

from mlchaos_orchestration.airflow.params import FAULT_LABELS, params_to_experiment

_DAGBAG = """
import json
from airflow.dag_processing.dagbag import DagBag

def wiring(bag):
    dag = bag.get_dag("feature_pipeline")
    return {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}

first, second = DagBag(), DagBag()  # each parse executes the DAG files afresh
print(json.dumps({"errors": {k: str(v)[-300:] for k, v in first.import_errors.items()},
                  "dags": sorted(first.dag_ids), "first": wiring(first),
                  "second": wiring(second)}))
"""


@pytest.fixture(scope="module")
def dagbag(airflow_env: dict[str, str]) -> dict[str, Any]:
    """Parse outcome of the DAGs folder (project DAGs + test DAGs), twice, in a subprocess."""
    return json.loads(python_last_line(_DAGBAG, airflow_env))


def test_dagbag_over_dags_has_no_import_errors(dagbag: dict[str, Any]) -> None:
    assert dagbag["errors"] == {}
    assert {
        "feature_pipeline",
        "mlchaos_experiment",
        "mlchaos_resilience_weekly",
        "tutorial_taskflow_api",
        "tutorial_taskflow_api_chaos",
    } <= set(dagbag["dags"])


def test_chaos_group_wiring_is_deterministic(dagbag: dict[str, Any]) -> None:
    first = dagbag["first"]
    assert first == dagbag["second"]
    assert first["mlchaos_setup.inject"] == [
        "ingest",
        "mlchaos_inject_data",
        "mlchaos_teardown.restore",
    ]
    assert first["mlchaos_inject_data"] == ["mlchaos_teardown.restore", "validate_features"]
    assert "mlchaos_inject_data" in first["build_features"]
    assert first["register_model"] == ["serve_batch"]
    assert first["serve_batch"] == ["mlchaos_teardown.restore"]
    assert first["mlchaos_teardown.restore"] == ["mlchaos_teardown.verdict"]


def test_import_is_light(airflow_env: dict[str, str]) -> None:
    code = (
        "import sys, json\nimport mlchaos_orchestration.airflow as m\n"
        "heavy = ['pandas', 'great_expectations', 'dagster', 'airflow']\n"
        "print(json.dumps([h for h in heavy if h in sys.modules]))"
    )
    assert json.loads(python_last_line(code, airflow_env)) == []


BAD_FORMS = {
    "fault": {"fault": "meteor_strike"},
    "fraction": {"fraction": 3},
    "target_dag": {"target_dag": "has space"},
}


@pytest.fixture(scope="module")
def form_errors(airflow_env: dict[str, str]) -> dict[str, str]:
    """First line of Airflow's validation error for each bad form (one subprocess)."""
    good = {"target_dag": "feature_pipeline", "fault": "nulls", "fraction": 0.2}
    forms = {
        name: {k: v for k, v in {**good, **change}.items() if v is not None}
        for name, change in BAD_FORMS.items()
    }
    code = (
        "import json\nfrom airflow.sdk.definitions.param import ParamsDict\n"
        "from mlchaos_orchestration.airflow.params import experiment_params\n"
        "out = {}\n"
        f"for name, form in {forms!r}.items():\n"
        "    try:\n"
        "        params = ParamsDict(experiment_params())\n"
        "        params.update(form)\n"
        "        params.validate()\n"
        "        out[name] = 'accepted'\n"
        "    except Exception as exc:\n"
        "        out[name] = str(exc).splitlines()[0]\n"
        "print(json.dumps(out))"
    )
    return json.loads(python_last_line(code, airflow_env))


@pytest.mark.parametrize("field", list(BAD_FORMS))
def test_bad_params_are_rejected_by_the_form(form_errors: dict[str, str], field: str) -> None:
    assert form_errors[field] != "accepted"
    assert field in form_errors[field]


def test_bad_params_run_touches_nothing(scenario: Any) -> None:
    from mlchaos_orchestration.airflow.dagtest import run_in_subprocess

    with pytest.raises(RuntimeError, match="fraction"):
        run_in_subprocess(
            "mlchaos_experiment",
            scenario.env,
            {"target_dag": "feature_pipeline", "fault": "nulls", "fraction": 3},
        )
    assert scenario.ledger().list_runs() == []
    assert scenario.checksums() == scenario.baseline


def test_good_params_build_the_experiment_in_airflow(scenario: Any) -> None:
    from mlchaos_orchestration.airflow.dagtest import run_in_subprocess

    # the trigger/wait needs a scheduler: only the form -> experiment step runs under dag.test
    outcome = run_in_subprocess(
        "mlchaos_experiment",
        scenario.env,
        {"target_dag": "feature_pipeline", "fault": "connector_failure", "fraction": 0.5},
        mark_success="^(run_target|verdict)$",
    )
    assert outcome["tasks"]["build_experiment"] == "success"
    experiment = outcome["xcoms"]["build_experiment"]
    assert experiment["faults"] == [
        {
            "fault": "connector_failure",
            "url": "${MLCHAOS_FEATURES_URL}",
            "rate": 0.5,
            "on": ["execute"],
        }
    ]
    assert scenario.ledger().list_runs() == []


@pytest.mark.parametrize("fault", list(FAULT_LABELS))
def test_every_form_fault_builds_a_valid_experiment(fault: str, monkeypatch: Any) -> None:
    from mlchaos_orchestration.core.experiment import parse_experiment

    monkeypatch.setenv("MLCHAOS_RAW_ROOT", "/data/raw")
    monkeypatch.setenv("MLCHAOS_FEATURES_URL", "sqlite:////data/features.db")
    exp = parse_experiment(
        params_to_experiment(
            {"fault": fault, "fraction": 0.3, "columns": ["amount"], "mode": "empty", "seed": 7}
        )
    )
    assert exp.faults[0].name == fault and exp.seed == 7
    # the form grants nothing: without a target the deployment's allowlist applies unchanged
    assert exp.safety.allowed_targets == [] and "allowed_targets" not in exp.safety.model_fields_set


def test_family_operators_build_their_default_experiment(airflow_env: dict[str, str]) -> None:
    code = """
import json, datetime as dt
from airflow.sdk import DAG
from mlchaos_orchestration.airflow import (ConnectorFailureOperator, DataFaultOperator,
    StalePartitionReplayOperator, UpstreamOutageOperator)
from mlchaos_orchestration.airflow.runtime import resolve
with DAG("ops", schedule=None, start_date=dt.datetime(2026, 1, 1)) as dag:
    ops = [UpstreamOutageOperator(task_id="o", target="/d/raw/ds={ds}", mode="empty"),
           StalePartitionReplayOperator(task_id="s", template="/d/raw/ds={ds}/"),
           ConnectorFailureOperator(task_id="c", url="sqlite:////d/f.db", rate=0.25),
           DataFaultOperator(task_id="n", fault="nulls",
                             fault_params={"columns": ["amount"], "fraction": 0.2},
                             target="/d/f.parquet")]
out = {}
for op in ops:
    run = resolve({"mlchaos": {}}, "r1", op.mlchaos_defaults)
    entry = run.experiment.faults[0]
    out[op.task_id] = [run.experiment.name, entry.name, op.stage, op.wanted(entry)]
print(json.dumps(out))
"""
    assert json.loads(python_last_line(code, airflow_env)) == {
        "o": ["ops.o", "upstream_outage", "all", True],
        "s": ["ops.s", "stale_partition_replay", "all", True],
        "c": ["ops.c", "connector_failure", "all", True],
        "n": ["ops.n", "nulls", "data", True],
    }


def test_add_chaos_refuses_bad_wiring_with_one_line(airflow_env: dict[str, str]) -> None:
    code = """
import json, datetime as dt
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from mlchaos_orchestration.airflow import add_chaos
with DAG("w", schedule=None, start_date=dt.datetime(2026, 1, 1)) as dag:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
out = []
for kwargs in ({"fault": "nulls", "before": "nope"}, {"columns": ["x"]},
               {"fault": "nulls", "experiment": "x"}):
    try:
        add_chaos(dag, **kwargs)
        out.append("accepted")
    except Exception as exc:
        out.append(type(exc).__name__ + ": " + str(exc))
add_chaos(dag, fault="nulls", columns=["x"], before="b")
try:
    add_chaos(dag, fault="nulls", columns=["x"], before="b")
except Exception as exc:
    out.append(str(exc))
print(json.dumps(out))
"""
    assert json.loads(python_last_line(code, airflow_env)) == [
        "ConfigError: add_chaos: before='nope' is not a task of DAG 'w'",
        "ConfigError: add_chaos: columns given without fault=",
        "ConfigError: add_chaos: give fault= or experiment=, not both",
        "add_chaos: DAG 'w' already has chaos tasks",
    ]


def test_at_points_get_their_own_inject_task_and_groups_stay_acyclic(
    airflow_env: dict[str, str], tmp_path: Any
) -> None:
    """Every ``at:`` of the DAG's experiments file gets an inject task just before that task
    (after its upstream tasks); the serialized DAG sorts at the task-group level (the UI's graph
    and grid endpoints answer 500 exactly when this raises)."""
    experiments = tmp_path / "exps.yaml"
    experiments.write_text(
        "experiments:\n"
        "  - name: a\n    faults: [{fault: nulls, columns: [x], target: /t.csv, at: c}]\n"
        "  - name: b\n    faults: [{fault: nulls, columns: [x], target: /t.csv, at: b}]\n"
    )
    code = f"""
import json, datetime as dt
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.serialization.serialized_objects import DagSerialization
from mlchaos_orchestration.airflow import add_chaos
with DAG("w", schedule=None, start_date=dt.datetime(2026, 1, 1)) as dag:
    a, b, c, d = (EmptyOperator(task_id=t) for t in "abcd")
    a >> b >> c >> d
add_chaos(dag, experiments_file={str(experiments)!r}, before="a", gate="d", consumer="d")
sdag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
print(json.dumps({{"wiring": {{t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}},
    "groups": [getattr(n, "node_id", n) for n in sdag.task_group.topological_sort()]}}))
"""
    out = json.loads(python_last_line(code, airflow_env))
    wiring = out["wiring"]
    assert wiring["mlchaos_inject_data"] == ["c", "mlchaos_setup.inject"]  # before the gate d
    assert wiring["mlchaos_inject_data__b"] == ["a", "mlchaos_setup.inject"]
    assert wiring["mlchaos_inject_data__c"] == ["b", "mlchaos_setup.inject"]
    assert "mlchaos_inject_data__c" in wiring["c"] and "mlchaos_inject_data" in wiring["d"]
    assert out["groups"][0] == "mlchaos_setup" and out["groups"][-1] == "mlchaos_teardown"


def test_form_target_with_env_references_is_bounded_after_expansion(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from mlchaos_orchestration.airflow.params import _allow_entry, form_experiment
    from mlchaos_orchestration.errors import SafetyError

    raw = tmp_path / "raw"
    raw.mkdir()
    monkeypatch.setenv("MLCHAOS_RAW_ROOT", str(raw))
    monkeypatch.delenv("MLCHAOS_EXPERIMENTS_FILE", raising=False)
    assert _allow_entry("upstream_outage", "${MLCHAOS_RAW_ROOT}/ds={ds}") == str(raw)
    form = {
        "fault": "upstream_outage",
        "mode": "empty",
        "target_dag": "feature_pipeline",
        "target": "${MLCHAOS_RAW_ROOT}/ds={ds}",
    }
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", str(tmp_path))
    assert form_experiment(form)["faults"][0]["target"] == "${MLCHAOS_RAW_ROOT}/ds={ds}"
    monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", str(tmp_path / "elsewhere"))
    with pytest.raises(SafetyError, match="outside the deployment allowlist"):
        form_experiment(form)
