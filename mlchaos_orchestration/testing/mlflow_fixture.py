"""A small, real MLflow model registry for tests, the torture harness and the registry example.

:func:`build_registry` creates (in a SQL tracking store, SQLite by default) a registered model with
``versions`` versions, each a real pyfunc model (a constant-free linear score, loadable with
``mlflow.pyfunc.load_model``) with a signature, its run's metrics and tags; every version but the
newest is validated (tag ``validation_status=passed``), the newest validated one holds the alias.
Version ``i`` is dated ``days_apart * (versions - i)`` days back, so age-based faults have
something to pick. Migrating a new SQLite tracking database takes seconds: :func:`empty_store`
does it once per process and copies the file.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INPUTS = [("amount", "double"), ("age", "long"), ("country", "string")]
OUTPUT = "fraud_probability"
VALIDATED = {"validation_status": "passed"}
_TEMPLATE: dict[str, Path] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Registry:
    """Where the built registry lives and what it holds."""

    tracking_uri: str
    model: str
    alias: str
    versions: int
    artifacts: Path

    @property
    def target(self) -> str:
        return f"mlflow://{self.model}@{self.alias}"


def empty_store(path: Path) -> str:
    """A migrated, empty SQLite tracking store at ``path``; returns its URI."""
    with _LOCK:
        template = _TEMPLATE.get("db")
        if template is None or not template.exists():
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            folder = Path(tempfile.mkdtemp(prefix="mlchaos-mlflow-template-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            template = folder / "mlflow.db"
            SqlAlchemyStore(f"sqlite:///{template}", str(folder / "artifacts"))
            _TEMPLATE["db"] = template
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def signature() -> Any:
    """The example signature: three named inputs, one named output."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec(t, n) for n, t in INPUTS]),
        outputs=Schema([ColSpec("double", OUTPUT)]),
    )


def save_model(path: Path, weight: float) -> None:
    """A pyfunc model scoring ``sigmoid(weight * amount / 1000)`` into ``fraud_probability``."""
    import mlflow.pyfunc

    quiet = logging.getLogger("mlflow.pyfunc")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the cloudpickle and input-example notices, for our own model
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")

            class Score(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
                _skip_type_hint_validation = True  # the signature is given explicitly

                def __init__(self, w):  # no type hints: MLflow would infer a signature from them
                    self.w = w

                def predict(self, context, model_input, params=None):
                    import numpy as np
                    import pandas as pd

                    z = self.w * model_input["amount"].astype(float).to_numpy() / 1000.0
                    return pd.DataFrame({OUTPUT: 1.0 / (1.0 + np.exp(-z))})

            mlflow.pyfunc.save_model(
                str(path), python_model=Score(weight), signature=signature(), pip_requirements=[]
            )
    finally:
        quiet.setLevel(level)


def build_registry(
    root: Path,
    *,
    tracking_uri: str | None = None,
    model: str = "fraud_scorer",
    alias: str = "champion",
    versions: int = 4,
    days_apart: float = 30.0,
) -> Registry:
    """Build the registry described in the module docstring under ``root``."""
    import sqlalchemy as sa
    from mlflow import MlflowClient

    root.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or empty_store(root / "mlflow.db")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    artifacts = root / "artifacts"
    experiment = client.create_experiment(
        f"{model}-{time.time_ns()}", artifact_location=artifacts.as_uri()
    )
    client.create_registered_model(model, tags={"team": "risk"}, description="fraud scorer")
    now_ms = int(time.time() * 1000)
    for i in range(1, versions + 1):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "auc", 0.7 + 0.05 * i)
        client.log_metric(run.info.run_id, "accuracy", 0.8 + 0.02 * i)
        client.set_terminated(run.info.run_id)
        folder = artifacts / f"model-v{i}"
        save_model(folder, weight=float(i))
        tags = {"trained_on": f"2026-0{i % 9 + 1}-01", **(VALIDATED if i < versions else {})}
        mv = client.create_model_version(
            model, source=str(folder), run_id=run.info.run_id, tags=tags, description=f"v{i}"
        )
        born = now_ms - int((versions - i) * days_apart * 86_400_000)
        with sa.create_engine(uri, poolclass=sa.pool.NullPool).begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE model_versions SET creation_time = :t, last_updated_time = :t "
                    "WHERE name = :n AND version = :v"
                ),
                {"t": born, "n": model, "v": int(mv.version)},
            )
    client.set_registered_model_alias(model, alias, max(1, versions - 1))
    return Registry(uri, model, alias, versions, artifacts)


def registry_state(reg: Registry) -> dict[str, Any]:
    """Every version, alias, tag, description and metric as MLflow reports them, every table of
    the tracking database and every model file: fingerprinted without the store under test."""
    from mlflow import MlflowClient

    from mlchaos_orchestration.testing.torture import local_snapshot, pg_snapshot, sqlite_snapshot

    client = MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)
    model = client.get_registered_model(reg.model)
    versions = {}
    for v in client.search_model_versions(f"name = '{reg.model}'"):
        versions[int(v.version)] = {
            "aliases": sorted(v.aliases),
            "tags": dict(v.tags),
            "description": v.description,
            "stage": v.current_stage,
            "source": v.source,
            "created": v.creation_timestamp,
            "updated": v.last_updated_timestamp,
            "metrics": client.get_run(v.run_id).data.metrics,
        }
    state: dict[str, Any] = {
        "model": [model.description, dict(model.tags), dict(model.aliases)],
        "versions": versions,
        "files": local_snapshot(reg.artifacts),
    }
    if reg.tracking_uri.startswith("sqlite:///"):
        state["db"] = sqlite_snapshot(Path(reg.tracking_uri[len("sqlite:///") :]))
    else:
        state["db"] = pg_snapshot(reg.tracking_uri, frozenset())
    return state
