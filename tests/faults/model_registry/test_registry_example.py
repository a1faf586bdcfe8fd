"""The example's registry experiments (``examples/registry_experiments.yaml``) on a real MLflow
registry filled by the example's training: the clean serving run is clean, every registry fault is
caught by the serving contract check before the consumer serves, and the registry comes back."""

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

EXPERIMENTS = Path(example.__file__).with_name("registry_experiments.yaml")


def test_registry_experiments_are_caught_before_serving(
    mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch, webhook: Any
) -> None:
    uri = f"sqlite:///{mlchaos_home / 'example' / 'mlflow.db'}"
    monkeypatch.setenv("MLCHAOS_MLFLOW_URI", uri)
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    config = ExampleConfig.from_env()
    prepare(config, days=3)
    assert example.prepare_registry(config) == [1, 2, 3]
    assert example.prepare_registry(config) == []  # idempotent
    reg = Registry(
        uri, example.MODEL, example.ALIAS, 3, mlchaos_home / "example" / "mlflow-artifacts"
    )
    before = registry_state(reg)

    spec = load_experiments(EXPERIMENTS)
    pipeline = load_pipeline(spec.pipeline)
    ledger = Ledger()
    verdicts = {}
    for exp in spec.experiments:
        result = run_experiment(pipeline, exp, ledger=ledger)
        verdicts[exp.name] = result.verdict["verdict"]
        consumer_ran = any(e.kind == "consumer_started" for e in ledger.events(result.run_id))
        assert consumer_ran == exp.control, exp.name  # never served a bad model
        assert registry_state(reg) == before, exp.name
    assert verdicts == {e.name: e.expect for e in spec.experiments}, verdicts
    assert webhook.wait_for(len(spec.experiments) - 1, timeout=10)  # one alert per fault
    assert all("halted at check_model" in r.json["text"] for r in webhook.requests)
