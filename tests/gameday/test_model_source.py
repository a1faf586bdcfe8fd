"""The prediction API serving ``models:/fraud_model@champion`` from a real MLflow registry,
through the serving contract check."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import joblib
import pytest

from mlchaos_orchestration.gameday.model_source import load_serving_model
from mlchaos_orchestration.gameday.stack import ApiServer
from mlchaos_orchestration.gates.gx import GateFailed

pytestmark = pytest.mark.timeout(600)
SOURCE = "models:/fraud_model@champion"


@pytest.fixture()
def registered(serving, mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The serving side's model registered with its metrics and promoted to ``champion``."""
    from mlchaos_orchestration.examples.model_registry import register_and_promote
    from mlchaos_orchestration.examples.steps import CATEGORICAL, NUMERIC, train
    from mlchaos_orchestration.gameday.materialize import example_features

    uri = f"sqlite:///{mlchaos_home / 'mlflow.db'}"
    monkeypatch.setenv("MLCHAOS_MLFLOW_URI", uri)
    features = example_features()
    model, metrics = train(features)
    register_and_promote(model, metrics, features[NUMERIC + CATEGORICAL].head(20), ds="2026-11-20")
    return uri


def test_api_serves_the_aliased_model_like_the_file(serving, registered: str) -> None:
    env = {**serving.config().env(), "MLCHAOS_SERVING_MODEL": SOURCE}
    env |= {k: os.environ[k] for k in ("MLCHAOS_MLFLOW_URI", "MLCHAOS_HOME")}
    body = {"user_id": serving.assets.user_ids[0], "amount": 120.0, "hour": 3}
    with ApiServer(serving.config().env(), serving.workdir / "api-file") as from_file:
        expected = httpx.post(f"{from_file.url}/predict", json=body).json()["score"]
    with ApiServer(env, serving.workdir / "api-alias") as by_alias:
        got = httpx.post(f"{by_alias.url}/predict", json=body)
    assert got.status_code == 200 and got.json()["score"] == pytest.approx(expected, abs=1e-6)


def test_a_model_breaking_the_contract_is_never_loaded(
    registered: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serving
) -> None:
    assert hasattr(load_serving_model(SOURCE), "predict_proba")  # the example's estimator
    strict = tmp_path / "contract.yaml"
    strict.write_text("outputs:\n  - {name: fraud_score, type: double}\n")
    monkeypatch.setenv("MLCHAOS_SERVING_CONTRACT", str(strict))
    with pytest.raises(GateFailed, match="fraud_score"):
        load_serving_model(SOURCE)
    with pytest.raises(ValueError, match="models:/NAME@ALIAS"):
        load_serving_model("models:/fraud_model")
    file_model = load_serving_model(str(serving.assets.model_path))
    assert type(file_model) is type(joblib.load(serving.assets.model_path))
