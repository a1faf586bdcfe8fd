"""The example's model registry on MLflow: register the trained model with a signature and its
metrics, promote it through the promotion gate (alias ``champion``), and serve it by alias.

The tracking store is SQLite next to the example's model folder unless ``MLCHAOS_MLFLOW_URI`` names
another (a PostgreSQL URL in staging; ``${VAR}``s allowed). The registered model wraps the
example's scikit-learn pipeline as a pyfunc whose output is one named column, ``fraud_probability``,
so its signature is a contract the serving side can check (``model_contract.yaml``).

The example pipeline's ``register_model`` and ``serve_batch`` steps are :func:`register_step` and
:func:`serve_step`; without MLflow installed they use the joblib file registry instead.
"""

from __future__ import annotations

import logging
import os
import shutil
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
#: rows of the model's input kept as the signature's example
SAMPLE_ROWS = 20


def mlflow_available() -> bool:
    """Whether MLflow is installed (the ``mlflow`` extra); without it the example registers to
    the joblib file registry and registry faults do not apply."""
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def tracking_uri(config: ExampleConfig | None = None) -> str:
    """The example's tracking store URI (``MLCHAOS_MLFLOW_URI``, else SQLite next to the file
    registry, ``<MLCHAOS_HOME>/example/mlflow.db`` by default)."""
    return (config or ExampleConfig.from_env()).tracking_uri


def contract() -> Any:
    """The example's model contract (a ``gates.promotion.ModelContract``)."""
    from mlchaos_orchestration.gates.promotion import ModelContract

    return ModelContract.load(CONTRACT_PATH)


def _client(uri: str | None = None) -> Any:
    from mlflow import MlflowClient

    uri = ensure_store(os.path.expandvars(uri or tracking_uri()))
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_store(uri: str) -> str:
    """Create a missing SQLite tracking store as a copy of an empty, migrated one made once per
    MLflow version under ``MLCHAOS_HOME/cache`` (migrating a fresh store costs seconds); other
    URIs are returned as they are."""
    from sqlalchemy.engine import make_url

    if not uri.startswith("sqlite:///"):
        return uri
    database = make_url(uri).database
    if not database or database == ":memory:" or Path(database).exists():
        return uri
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.copyfile(_empty_store(), tmp)
    os.replace(tmp, path)
    return uri


def _empty_store() -> Path:
    """The migrated empty tracking store of this MLflow version (made under a file lock)."""
    import fcntl
    from importlib.metadata import version

    cache = get_settings().data_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"mlflow-{version('mlflow-skinny')}-empty.db"
    if path.exists():
        return path
    with open(cache / ".mlflow-empty.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            from mlflow import MlflowClient

            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.unlink(missing_ok=True)
            MlflowClient(tracking_uri=f"sqlite:///{tmp}").search_experiments(max_results=1)
            os.replace(tmp, path)
    return path


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
        # MLflow warns on every save that a Python object is pickled: known and intended here
        logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
        mlflow.pyfunc.save_model(
            str(path),
            python_model=wrapped,
            signature=infer_signature(sample, output),
            pip_requirements=["scikit-learn", "pandas"],
        )


def _artifacts(uri: str) -> Path:
    """Where the model files of a tracking store go: next to a SQLite store, else the home."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).parent / "mlflow-artifacts"
    return get_settings().data_dir / "example" / "mlflow-artifacts"


def register(
    model: Any,
    metrics: dict[str, Any],
    sample: pd.DataFrame,
    *,
    ds: str,
    uri: str | None = None,
) -> int:
    """Register ``model`` (trained on day ``ds``) as a new version with its metrics; returns
    the version number. ``sample`` is the model's input (its columns make the signature)."""
    from mlflow.entities import Metric

    uri = os.path.expandvars(uri or tracking_uri())
    client = _client(uri)
    experiment = client.get_experiment_by_name(MODEL)
    artifacts = _artifacts(uri)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(MODEL, artifact_location=artifacts.as_uri())
    )
    run = client.create_run(experiment_id, tags={"ds": ds})
    now = int(time.time() * 1000)
    batch = [Metric(key, float(value), now, 0) for key, value in metrics.items()]
    client.log_batch(run.info.run_id, metrics=batch)
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
    model: Any, metrics: dict[str, Any], sample: pd.DataFrame, *, ds: str, uri: str | None = None
) -> int:
    """Register, then promote through the promotion gate (raises GateFailed if it fails)."""
    from mlchaos_orchestration.gates.promotion import promote

    version = register(model, metrics, sample, ds=ds, uri=uri)
    promote(MODEL, version, ALIAS, contract(), tracking_uri=uri or tracking_uri())
    return version


def prepare_registry(config: ExampleConfig, *, days: int = 3, client: Any = None) -> list[int]:
    """Train on each of the last ``days`` partitions up to ``config.ds`` and register the models:
    every one but the newest is promoted (the newest stays a candidate). Idempotent: nothing is
    done when the model is already registered. Returns the versions registered. ``client``: a
    boto3 client for an ``s3://`` raw root."""
    import datetime as dt

    from mlchaos_orchestration.examples.steps import CATEGORICAL, NUMERIC, build_features, ingest
    from mlchaos_orchestration.examples.steps import train as fit

    uri = config.tracking_uri
    if _client(uri).search_registered_models(f"name = '{MODEL}'"):
        return []
    end = dt.date.fromisoformat(config.ds)
    versions = []
    for back in range(days - 1, -1, -1):
        ds = (end - dt.timedelta(days=back)).isoformat()
        features = build_features(ingest(config.raw_root, ds, retries=0, client=client))
        model, metrics = fit(features)
        sample = features[NUMERIC + CATEGORICAL].head(SAMPLE_ROWS)
        step = register if back == 0 else register_and_promote
        versions.append(step(model, metrics, sample, ds=ds, uri=uri))
    return versions


def serve(requests: pd.DataFrame, *, uri: str | None = None) -> pd.DataFrame:
    """The consumer: load ``models:/fraud_model@champion`` after the serving contract check
    (GateFailed before anything is served when it fails), then score ``requests``."""
    from mlchaos_orchestration.examples.steps import CATEGORICAL, NUMERIC
    from mlchaos_orchestration.gates.promotion import load_for_serving

    model = load_for_serving(MODEL, ALIAS, contract(), tracking_uri=uri or tracking_uri())
    return model.predict(requests[NUMERIC + CATEGORICAL])


# ------------------------------------------------------------------- the example pipeline's steps
def register_step(
    model: Any, metrics: dict[str, Any], features: pd.DataFrame, config: ExampleConfig, *, ds: str
) -> dict[str, Any]:
    """``register_model`` with its promotion gate (raises GateFailed): the champion about to be
    replaced must still be the version last validated and meet the serving contract (a registry
    changed behind the pipeline's back halts here, before anything is written); then the new
    version is registered with signature and metrics, checked against the model contract,
    tagged validated and aliased ``champion``. Without MLflow: the next version of the joblib
    file registry (no alias: its newest version is served). Returns what was registered."""
    from mlchaos_orchestration.examples.steps import CATEGORICAL, NUMERIC
    from mlchaos_orchestration.examples.steps import register_model as register_file
    from mlchaos_orchestration.gates.promotion import check_serving, promote

    if not mlflow_available():
        return {"registry": "file", "path": str(register_file(model, metrics, config.model_dir))}
    uri = config.tracking_uri
    found = _client(uri).search_registered_models(f"name = '{MODEL}'")
    if found and ALIAS in _aliases(found[0]):
        check_serving(MODEL, ALIAS, contract(), tracking_uri=uri)
    sample = features[NUMERIC + CATEGORICAL].head(SAMPLE_ROWS)
    version = register(model, metrics, sample, ds=ds, uri=uri)
    promote(MODEL, version, ALIAS, contract(), tracking_uri=uri)
    return {"registry": "mlflow", "model": MODEL, "version": version, "alias": ALIAS}


def _aliases(registered: Any) -> set[str]:
    aliases = registered.aliases  # a dict (MLflow 3) or a list of RegisteredModelAlias
    return set(aliases) if isinstance(aliases, dict) else {a.alias for a in aliases}


def serve_step(features: pd.DataFrame, config: ExampleConfig) -> dict[str, Any]:
    """``serve_batch``, the consumer: load the served model (``models:/fraud_model@champion``
    through the serving contract check, else the file registry's newest version), score the
    day's features and check the output (one probability per row, none missing)."""
    import numpy as np

    from mlchaos_orchestration.examples.steps import CATEGORICAL, NUMERIC

    rows = features[NUMERIC + CATEGORICAL]
    if mlflow_available():
        scores = serve(rows, uri=config.tracking_uri)[OUTPUT].to_numpy(dtype="float64")
        served = f"models:/{MODEL}@{ALIAS}"
    else:
        import joblib

        latest = max(Path(config.model_dir).glob("v[0-9][0-9][0-9][0-9]"))
        scores = joblib.load(latest / "model.joblib").predict_proba(rows)[:, 1]
        served = str(latest)
    if len(scores) != len(rows) or not np.all((scores >= 0) & (scores <= 1)):
        raise ValueError(f"{served}: {len(scores)} scores for {len(rows)} rows, or out of [0, 1]")
    return {"model": served, "rows": int(len(rows)), "mean_score": round(float(scores.mean()), 6)}
