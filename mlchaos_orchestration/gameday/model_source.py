"""Where the prediction API's model comes from: a joblib file, or ``models:/NAME@ALIAS`` in the
MLflow registry, loaded through the promotion gate's serving contract check (a version that
breaks the contract stops the API from starting: nothing bad is served)."""

from __future__ import annotations

import os
from typing import Any

PREFIX = "models:/"


def load_serving_model(source: str) -> Any:
    """The model behind ``source``: a scikit-learn estimator (``predict_proba``) either way.

    ``models:/NAME@ALIAS`` uses ``MLCHAOS_MLFLOW_URI`` (default: the example's store) and the
    contract file ``MLCHAOS_SERVING_CONTRACT`` (default: the example's ``model_contract.yaml``).
    """
    if not source.startswith(PREFIX):
        import joblib

        return joblib.load(source)  # our own artifact, written by the example
    from mlchaos_orchestration.examples import model_registry as example
    from mlchaos_orchestration.gates.promotion import ModelContract, load_for_serving

    name, _, alias = source[len(PREFIX) :].partition("@")
    if not name or not alias:
        raise ValueError(f"expected models:/NAME@ALIAS, got {source!r}")
    path = os.environ.get("MLCHAOS_SERVING_CONTRACT")
    contract = ModelContract.load(path) if path else example.contract()
    uri = os.path.expandvars(example.tracking_uri())
    loaded = load_for_serving(name, alias, contract, tracking_uri=uri)
    inner = getattr(loaded.unwrap_python_model(), "inner", None)
    return inner if hasattr(inner, "predict_proba") else PyfuncProba(loaded)


class PyfuncProba:
    """A pyfunc whose output's last column is the positive-class probability, as an estimator
    with ``predict_proba`` and ``feature_names_in_`` (what the API scores with)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        schema = model.metadata.get_input_schema()
        self.feature_names_in_ = list(schema.input_names()) if schema is not None else None

    def predict_proba(self, frame: Any) -> Any:
        import numpy as np

        out = self.model.predict(frame)
        positive = np.asarray(out.iloc[:, -1] if hasattr(out, "iloc") else out, dtype=float)
        return np.column_stack([1.0 - positive, positive])
