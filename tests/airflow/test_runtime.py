"""The Airflow-free request resolution: which experiment a run's conf asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos_orchestration.airflow.runtime import default_experiment, requested, resolve
from mlchaos_orchestration.errors import SpecError

EXAMPLES = Path(__file__).resolve().parents[2] / "mlchaos_orchestration" / "examples"
DEFAULTS = {
    "experiment": default_experiment("d.nulls", "nulls", {"columns": ["a"]}, gate="g", consumer="c")
}


@pytest.mark.parametrize(
    "conf", [{}, {"other": 1}, {"mlchaos": None}, {"mlchaos": {"enabled": False}}, None]
)
def test_no_request_is_dormant(conf: object) -> None:
    assert requested(conf) is None
    assert resolve(conf, "run-1", DEFAULTS) is None


def test_default_experiment_and_stable_run_id() -> None:
    first = resolve({"mlchaos": {}}, "run-1", DEFAULTS)
    again = resolve({"mlchaos": True}, "run-1", DEFAULTS)
    other = resolve({"mlchaos": {}}, "run-2", DEFAULTS)
    assert first is not None and again is not None and other is not None
    assert first.experiment.name == "d.nulls" and (first.gate, first.consumer) == ("g", "c")
    assert first.run_id == again.run_id != other.run_id
    assert first.seed == again.seed != other.seed


def test_named_experiment_from_the_dag_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCHAOS_RAW_ROOT", "/data/raw")
    monkeypatch.setenv("MLCHAOS_FEATURES_URL", "sqlite:////data/features.db")
    run = resolve(
        {"mlchaos": {"experiment": "outage-empty", "dry_run": True}},
        "r",
        {"experiments_file": str(EXAMPLES / "experiments.yaml")},
    )
    assert run is not None and run.dry_run
    assert run.experiment.faults[0].name == "upstream_outage"
    assert run.consumer == "train_model"


def test_inline_experiment_is_validated() -> None:
    with pytest.raises(SpecError, match="fraction"):
        resolve(
            {
                "mlchaos": {
                    "experiment": {
                        "name": "x",
                        "faults": [{"fault": "nulls", "columns": ["a"], "fraction": 3}],
                    }
                }
            },
            "r",
        )


def test_request_without_experiment_or_default_is_an_error() -> None:
    with pytest.raises(SpecError, match="name an experiment"):
        resolve({"mlchaos": {}}, "r", {})
    with pytest.raises(SpecError, match="must be a mapping"):
        resolve({"mlchaos": "nulls"}, "r", {})
