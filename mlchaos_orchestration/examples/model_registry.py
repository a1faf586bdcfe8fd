"""The example's model registry on MLflow: register the trained model with a signature and its
metrics, promote it through the promotion gate (alias ``champion``), and serve it by alias.

The tracking store is SQLite under ``MLCHAOS_HOME`` unless ``MLCHAOS_MLFLOW_URI`` names another
(a PostgreSQL URL in staging; ``${VAR}``s allowed). The registered model wraps the example's
scikit-learn pipeline as a pyfunc whose output is one named column, ``fraud_probability``, so its
signature is a contract the serving side can check (``model_contract.yaml``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlchaos_orchestration.examples.locations import ExampleConfig
from mlchaos_orchestration.settings import get_settings

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

MODEL = "fraud_model"
ALIAS = "champion"
OUTPUT = "fraud_probability"
CONTRACT_PATH = Path(__file__).with_name("model_contract.yaml")


def tracking_uri() -> str:
    """The example's tracking store URI (``MLCHAOS_MLFLOW_URI`` or SQLite under the home)."""
    uri = os.environ.get("MLCHAOS_MLFLOW_URI")
    return uri or f"sqlite:///{get_settings().data_dir / 'example' / 'mlflow.db'}"


def contract() -> Any:
    """The example's model contract (a ``gates.promotion.ModelContract``)."""
    from mlchaos_orchestration.gates.promotion import ModelContract

    return ModelContract.load(CONTRACT_PATH)


def _client() -> Any:
    from mlflow import MlflowClient

    uri = os.path.expandvars(tracking_uri())
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _save(model: Any, sample: pd.DataFrame, path: Path) -> None:
    """Save ``model`` as a pyfunc with a signature inferred from ``sample`` and its output."""
    import warnings

    import mlflow.pyfunc
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        class FraudModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
            _skip_type_hint_validation = True  # the signature is given explicitly

            def __init__(self, inner):  # no type hints: MLflow would infer a schema from them
                self.inner = inner

            def predict(self, context, model_input, params=None):
                import pandas as pd

                proba = self.inner.predict_proba(model_input)[:, 1]
                return pd.DataFrame({OUTPUT: proba.astype("float64")})

        wrapped = FraudModel(model)
        output = wrapped.predict(None, sample)
        mlflow.pyfunc.save_model(
            str(path),
            python_model=wrapped,
            signature=infer_signature(sample, output),
            pip_requirements=["scikit-learn", "pandas"],
        )


def register(model: Any, metrics: dict[str, Any], sample: pd.DataFrame, *, ds: str) -> int:
    """Register ``model`` (trained on day ``ds``) as a new version with its metrics; returns
    the version number. ``sample`` is the model's input (its columns make the signature)."""
    client = _client()
    experiment = client.get_experiment_by_name(MODEL)
    artifacts = get_settings().data_dir / "example" / "mlflow-artifacts"
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(MODEL, artifact_location=artifacts.as_uri())
    )
    run = client.create_run(experiment_id, tags={"ds": ds})
    now = int(time.time() * 1000)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, float(value), timestamp=now)
    folder = artifacts / run.info.run_id / "model"
    _save(model, sample, folder)
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = '{MODEL}'"):
        client.create_registered_model(MODEL, description="example fraud classifier")
    version = client.create_model_version(
        MODEL, source=str(folder), run_id=run.info.run_id, tags={"trained_on": ds}
    )
    return int(version.version)


def register_and_promote(
    model: Any, metrics: dict[str, Any], sample: pd.DataFrame, *, ds: str
) -> int:
    """Register, then promote through the promotion gate (raises GateFailed if it fails)."""
    from mlchaos_orchestration.gates.promotion import promote

    version = register(model, metrics, sample, ds=ds)
    promote(MODEL, version, ALIAS, contract(), tracking_uri=tracking_uri())
    return version


def prepare_registry(config: ExampleConfig, *, days: int = 3) -> list[int]:
    """Train on each of the last ``days`` partitions up to ``config.ds`` and register the models:
    every one but the newest is promoted (the newest stays a candidate). Idempotent: nothing is
    done when the model is already registered. Returns the versions registered."""
    import datetime as dt

    from mlchaos_orchestration.examples.steps import CATEGORICAL, NUMERIC, build_features, ingest
    from mlchaos_orchestration.examples.steps import train as fit

    client = _client()
    if client.search_registered_models(f"name = '{MODEL}'"):
        return []
    end = dt.date.fromisoformat(config.ds)
    versions = []
    for back in range(days - 1, -1, -1):
        ds = (end - dt.timedelta(days=back)).isoformat()
        features = build_features(ingest(config.raw_root, ds, retries=0))
        model, metrics = fit(features)
        sample = features[NUMERIC + CATEGORICAL].head(20)
        step = register if back == 0 else register_and_promote
        versions.append(step(model, metrics, sample, ds=ds))
    return versions


def serve(requests: pd.DataFrame) -> pd.DataFrame:
    """The consumer: load ``models:/fraud_model@champion`` after the serving contract check
    (GateFailed before anything is served when it fails), then score ``requests``."""
    from mlchaos_orchestration.examples.steps import CATEGORICAL, NUMERIC
    from mlchaos_orchestration.gates.promotion import load_for_serving

    model = load_for_serving(MODEL, ALIAS, contract(), tracking_uri=tracking_uri())
    return model.predict(requests[NUMERIC + CATEGORICAL])
