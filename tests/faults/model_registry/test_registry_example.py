"""The example's model registry on a real MLflow tracking store: the serving pipeline's registry
experiments (``examples/registry_experiments.yaml``) and the main example matrix's registry
experiments (``examples/experiments.yaml``, caught by the promotion gate of ``register_model``),
the registry identical after every fault; and the example without MLflow (file registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.core.experiment import load_experiments
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.pipeline import load_pipeline
from mlchaos_orchestration.core.runner import run_experiment
from mlchaos_orchestration.examples import model_registry as example
from mlchaos_orchestration.examples.locations import ExampleConfig, prepare
from mlchaos_orchestration.testing.mlflow_fixture import Registry, registry_state

EXAMPLES = Path(example.__file__).parent
REGISTRY_FAULTS = {"model_schema_change", "registry_metadata_missing", "alias_moved", "stale_model"}


@pytest.fixture
def example_registry(
    mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch, webhook: Any
) -> tuple[ExampleConfig, Registry]:
    """The example's data and registry, prepared as the demo's workers do (v1, v2 promoted,
    v3 a candidate)."""
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    config = ExampleConfig.from_env()
    for key, value in config.export().items():
        monkeypatch.setenv(key, value)
    prepare(config, days=3)
    assert config.tracking_uri == f"sqlite:///{mlchaos_home / 'example' / 'mlflow.db'}"
    assert example.prepare_registry(config) == []  # prepare filled it; idempotent
    reg = Registry(
        config.tracking_uri,
        example.MODEL,
        example.ALIAS,
        3,
        mlchaos_home / "example" / "mlflow-artifacts",
    )
    return config, reg


def _run(path: Path, names: set[str] | None = None) -> list[tuple[Any, Any, Ledger]]:
    spec = load_experiments(path)
    pipeline = load_pipeline(spec.pipeline)
    ledger = Ledger()
    wanted = [e for e in spec.experiments if names is None or e.name in names]
    return [(exp, run_experiment(pipeline, exp, ledger=ledger), ledger) for exp in wanted]


def test_serving_pipeline_registry_experiments_are_caught(
    example_registry: tuple[ExampleConfig, Registry], webhook: Any
) -> None:
    _, reg = example_registry
    before = registry_state(reg)
    assert sorted(before["versions"]) == [1, 2, 3]
    runs = _run(EXAMPLES / "registry_experiments.yaml")
    for exp, result, ledger in runs:
        consumer_ran = any(e.kind == "consumer_started" for e in ledger.events(result.run_id))
        assert consumer_ran == exp.control, exp.name  # never served a bad model
        assert result.verdict["verdict"] == exp.expect, (exp.name, result.verdict)
        assert registry_state(reg) == before, exp.name
    assert webhook.wait_for(len(runs) - 1, timeout=10)  # one alert per fault
    assert all("halted at check_model" in r.json["text"] for r in webhook.requests)


def test_main_matrix_registry_experiments_halt_at_the_promotion_gate(
    example_registry: tuple[ExampleConfig, Registry], webhook: Any
) -> None:
    """The main example (plain runner): a clean run registers, promotes and serves the new
    champion; every registry experiment of experiments.yaml is caught by register_model's
    promotion gate before serve_batch, and the registry is exactly as before."""
    _, reg = example_registry
    spec = load_experiments(EXAMPLES / "experiments.yaml")
    registry_exps = {
        e.name for e in spec.experiments if {f.name for f in e.faults} & REGISTRY_FAULTS
    }
    assert registry_exps == {
        "model-schema-change",
        "registry-metadata-missing",
        "alias-moved-unvalidated",
        "stale-model",
    }
    [(_, control, _)] = _run(EXAMPLES / "experiments.yaml", {"control"})
    assert control.verdict["verdict"] == "clean"
    assert control.outputs["register_model"] == {
        "registry": "mlflow",
        "model": "fraud_model",
        "version": 4,
        "alias": "champion",
    }
    assert control.outputs["serve_batch"]["model"] == "models:/fraud_model@champion"
    assert control.outputs["serve_batch"]["rows"] == 2000
    before = registry_state(reg)
    assert before["model"][2] == {"champion": 4} and sorted(before["versions"]) == [1, 2, 3, 4]
    for exp, result, ledger in _run(EXAMPLES / "experiments.yaml", registry_exps):
        kinds = [e.kind for e in ledger.events(result.run_id)]
        assert result.verdict["verdict"] == "caught", (exp.name, result.verdict)
        assert result.verdict["halted_by"] == "register_model", exp.name
        assert "consumer_started" not in kinds and "serve_batch" not in result.outputs
        assert registry_state(reg) == before, exp.name
    assert webhook.wait_for(len(registry_exps), timeout=10)


def test_without_mlflow_the_example_uses_its_file_registry(
    mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No MLflow: prepare writes no registry, the pipeline registers to the joblib file registry
    and serves its newest version, registry faults refuse in one line, and the demo's matrix
    leaves the registry experiments out."""
    import importlib.util

    from mlchaos_orchestration.errors import TargetError
    from mlchaos_orchestration.faults.base import ApplyContext
    from mlchaos_orchestration.faults.catalog import get_fault_class
    from mlchaos_orchestration.faults.model_registry.base import NO_MLFLOW
    from mlchaos_orchestration.suite.demo import demo_experiments

    monkeypatch.setattr(example, "mlflow_available", lambda: False)
    config = ExampleConfig.from_env()
    for key, value in config.export().items():
        monkeypatch.setenv(key, value)
    prepare(config, days=2)
    assert not (mlchaos_home / "example" / "mlflow.db").exists()
    pipeline = load_pipeline(load_experiments(EXAMPLES / "experiments.yaml").pipeline)
    outputs = pipeline_outputs(pipeline)
    registered = outputs["register_model"]
    assert registered["registry"] == "file" and Path(registered["path"]).name == "v0001"
    assert outputs["serve_batch"]["model"] == registered["path"]
    assert 0 < outputs["serve_batch"]["mean_score"] < 1

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else find_spec(name)
    )
    fault = get_fault_class("stale_model")(target="mlflow://fraud_model@champion")
    with pytest.raises(TargetError, match="MLflow is not installed"):
        fault.touched_targets(ApplyContext(seed=0))  # the pre-flight: nothing backed up
    assert "pip install 'mlchaos-orchestration[mlflow]'" in NO_MLFLOW

    path, skipped = demo_experiments(tmp_path)
    assert path.parent == tmp_path and len(skipped) == 4
    names = [e.name for e in load_experiments(path).experiments]
    assert "control" in names and "mislabel" in names and not set(skipped) & set(names)


def pipeline_outputs(pipeline: Any) -> dict[str, Any]:
    """Run a plain pipeline's steps in order (no chaos); their outputs by step."""
    outputs: dict[str, Any] = {}
    for step in pipeline.steps:
        outputs[step.name] = step.fn(**{name: outputs[name] for name in step.inputs})
    return outputs


def test_tracking_store_is_copied_from_one_migrated_empty_store(
    mlchaos_home: Path, tmp_path: Path
) -> None:
    """A missing SQLite store is a copy of the cached migrated one: made once, then reused."""
    import sqlalchemy as sa

    first = example.ensure_store(f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}")
    template = next((mlchaos_home / "cache").glob("mlflow-*-empty.db"))
    made = template.stat().st_mtime_ns
    second = example.ensure_store(f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}")
    assert template.stat().st_mtime_ns == made
    for uri in (first, second):
        with sa.create_engine(uri).connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert example.ensure_store("postgresql://u@h/db") == "postgresql://u@h/db"
    client = example._client(second)
    assert client.search_experiments()  # MLflow accepts the copy as it is
